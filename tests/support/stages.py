"""A stage called directly, as a run calls it: with the settings the command line would read now (after
the test's monkeypatch), GitHub's context in use, and the reporter the CLI would choose."""

from __future__ import annotations

from register.report import github
from register.report.reporters import GitHub, Reporters, Text
from register.settings import Settings


def settings() -> Settings:
    read = Settings.from_environ()
    github.use(read.github)
    return read


def prepare(manifest, environment: str, **options):
    """register.image.prepare with the CLI's settings and its text reporter (GitHub's beside it under Actions),
    without the masks of the job's own variables, which the CLI writes before the stage runs."""
    from register import image

    run = settings()
    events = Reporters(Text(), GitHub(run)) if run.github.active else Text()
    return image.prepare(manifest, environment, settings=run, events=events, **options)


def registry(repository):
    """The registry of `repository`, its secrets masked as a run masks them."""
    from register.image import registries

    return registries.for_repository(repository, settings(), github.mask)
