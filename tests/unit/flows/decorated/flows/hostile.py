"""Decorators that do not make a flow, or whose result cannot be seen without running code."""

from some_installed_lib import lib_flow
from team.decorators import from_elsewhere, logged, ping


@ping
def circle(a: int = 0):
    pass


@logged
def plain(a: int = 0):
    pass


@lib_flow
def outside(a: int = 0):
    pass


@from_elsewhere
def unseen(a: int = 0):
    pass
