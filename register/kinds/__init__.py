"""The kinds of things the manifest manages besides deployments, each declared once in a module of its own.

`BEFORE_DEPLOYMENTS`: the kinds deployments may name (a variable in a job variable's template), in the
order they are written; deployments come after them, and deletions run in the reverse order, last.
Adding a kind is one module with its `KIND` and one entry here (and its section of the manifest).
"""

from __future__ import annotations

from register.engine.kind import Kind
from register.kinds import block, variable, webhook

BEFORE_DEPLOYMENTS: tuple[Kind, ...] = (variable.KIND, block.KIND, webhook.KIND)
KINDS: dict[str, Kind] = {kind.name: kind for kind in BEFORE_DEPLOYMENTS}
