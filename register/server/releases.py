"""What a Prefect server release keeps of what flow-register sends.

An older server takes a deployment field it does not know and drops it without a word: the deploy says
done, the field is not there, and every later plan reads it as a change. Each field a supported release
may lack is listed here with the first release that keeps it, so the plan refuses it at its manifest line
before any write, naming the release to move to. Prefect Cloud, and a server that does not say its
version, keep them all.
"""

from __future__ import annotations

from collections.abc import Callable

# (path in the resolved deployment, the first release keeping it, what it is in the user's words).
# `None` in a path stands for every item of a list.
SINCE: tuple[tuple[tuple, str, str], ...] = (
    (("concurrency_options", "grace_period_seconds"), "3.6.6", "a concurrency grace period"),
    (("triggers", None, "schedule_after"), "3.4.15", "a trigger's schedule_after"),
)


def release(text: str) -> tuple[int, ...]:
    """`3.4.10` as (3, 4, 10); a version that is not one (Cloud's, a development build's) raises ValueError."""
    return tuple(int(part) for part in text.split(".")[:3])


def _found(value, path: tuple, at: tuple = ()) -> list[tuple]:
    """The full paths under `value` that `path` names and that hold something other than nothing or zero."""
    if not path:
        return [at] if value not in (None, 0, 0.0) else []
    head, rest = path[0], path[1:]
    if head is None:
        return [p for i, item in enumerate(value) for p in _found(item, rest, (*at, i))] \
            if isinstance(value, list) else []
    if isinstance(value, dict) and head in value:
        return _found(value[head], rest, (*at, head))
    return []


def unkept(deployment, version: Callable[[], str | None]) -> list[tuple[tuple, str]]:
    """What `deployment` sets that the server would drop, each with its resolved path and the message.
    `version()` (the server's release, None when it does not say) is asked only when a field of SINCE is set."""
    found = []
    for path, since, what in SINCE:
        paths = _found({path[0]: getattr(deployment, path[0], None)}, path)
        if not paths:
            continue
        running = version()
        try:
            if release(running or "") >= release(since):
                continue
        except ValueError:  # Cloud's, or a development build's
            continue
        for at in paths:
            found.append((at, f"this server runs Prefect {running}, which does not keep {what} "
                              f"('{'.'.join(map(str, at))}'): it would drop it without an error. Move the server to "
                              f"Prefect {since} or newer, or leave the field out"))
    return found
