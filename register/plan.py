"""Kept only for kinds written against the old place of a plan's parts: they are in register/engine/
(`Change` in kind.py, `Action` and `Plan` in planner.py); deployments are in register/kinds/deployment.py."""

from register.engine.kind import Change  # noqa: F401
from register.engine.planner import Action, Plan  # noqa: F401
