"""The team's own decorators around Prefect's flow, in the shapes real projects write them."""

import functools
from typing import Any, Callable, cast

from prefect import flow
from prefect import flow as prefect_flow

my_flow = flow(retries=3)


def etl_flow(**kw):
    return flow(log_prints=True, **kw)


def pipeline(fn):
    return prefect_flow(name="piped")(fn)


def team_flow(fn):
    return pipeline(fn)  # through another of the team's decorators


def pipeline_flow(config=None, **kw):
    def decorator(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            return await fn(*args, **kwargs)

        return flow(**kw)(wrapper)

    return decorator


def optional_flow(fn=None, **kw):
    if fn is None:
        return functools.partial(optional_flow, **kw)
    return flow(**kw)(fn)


def ping(fn):
    return pong(fn)


def pong(fn):
    return ping(fn)


def logged(fn):
    return fn  # returns the function itself: not a flow


def from_elsewhere(fn):
    import json

    return json.loads(fn)


def keyword_flow(fn=None, *, retries: int = 0, **kw):
    def apply(inner):
        return flow(retries=retries, **kw)(inner)

    return apply(fn) if fn else apply


def traced_flow(*, name=None, retries=None, **kw):
    """The shape of a framework's decorator: keyword-only options, a local alias of flow, a functools.wraps
    wrapper passed through a tracer from outside the project, the result cast to another type."""
    flow_decorator: Callable[..., Any] = prefect_flow

    def _apply(fn):
        async def _wrapper(*args, **kwargs):
            return await fn(*args, **kwargs)

        traced = functools.update_wrapper(_wrapper, fn)  # a library call, as a tracer is
        made = cast(Any, flow_decorator(name=name, retries=0 if retries is None else retries, **kw)(traced))
        return made

    return _apply
