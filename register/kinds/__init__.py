"""The kinds of things the manifest manages, each declared once in a module of its own.

`BEFORE_DEPLOYMENTS`: the kinds deployments may name (a variable in a job variable's template), in the
order they are written; deployments (register/kinds/deployment.py, with their triggers' automations,
register/kinds/automation.py) come after them, then `AFTER_DEPLOYMENTS` (kinds that name deployments);
deletions run in the reverse order, last. Adding a kind is one module with its `KIND` and one entry in one
of the two tuples (and its section of the manifest).
"""

from __future__ import annotations

from register.engine.kind import Kind
from register.kinds import block, deployment, variable, webhook

BEFORE_DEPLOYMENTS: tuple[Kind, ...] = (variable.KIND, block.KIND, webhook.KIND)
AFTER_DEPLOYMENTS: tuple[Kind, ...] = ()
DEPLOYMENTS: Kind = deployment.KIND
# Every kind in dependency order, and by name.
IN_ORDER: tuple[Kind, ...] = (*BEFORE_DEPLOYMENTS, DEPLOYMENTS, *AFTER_DEPLOYMENTS)
BY_NAME: dict[str, Kind] = {kind.name: kind for kind in IN_ORDER}
# The kinds besides deployments (their sections of the report come before the deployments' table).
KINDS: dict[str, Kind] = {kind.name: kind for kind in IN_ORDER if kind is not DEPLOYMENTS}
