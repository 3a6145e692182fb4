"""Write register/prefect/triggers.schema.json: the JSON Schema of Prefect's deployment triggers, from the pinned
Prefect's own model, so `validate` can check a trigger without importing Prefect (about 1.5 s).

    uv run python scripts/trigger_schema.py          # after a Prefect upgrade; tests/unit/test_models.py
                                                     # fails while the shipped file differs

The schema may refuse more than Prefect's model, never less: a trigger it refuses is judged by the model
itself (which words the error). So what pydantic's schema cannot say is made stricter here: a duration is a
number of seconds (an ISO 8601 string goes to the model), at least 0, at least 10 for `within` of a
Proactive trigger and 300 for a metric's `range` and `firing_for`; a compound trigger's `require` is
'any' or 'all' (a count goes to the model, which checks it against the triggers).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "register" / "prefect" / "triggers.schema.json"


def _stricter(node, name: str = ""):
    if isinstance(node, dict):
        if node.get("format") == "duration" and node.get("type") == "string":
            least = 300 if name in ("range", "firing_for") else 0
            return {k: v for k, v in node.items() if k not in ("format", "type")} | {"type": "number", "minimum": least}
        out = {k: _stricter(v, k) for k, v in node.items()}
        if name == "require" and "anyOf" in out:
            out["anyOf"] = [branch for branch in out["anyOf"] if branch.get("type") != "integer"]
        if "posture" in out.get("properties", {}) and "within" in out.get("properties", {}):
            out["if"] = {"properties": {"posture": {"const": "Proactive"}}, "required": ["posture"]}
            out["then"] = {"properties": {"within": {"minimum": 10}}, "required": ["within"]}
        return out
    if isinstance(node, list):
        return [_stricter(v, name) for v in node]
    return node


def generate() -> str:
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    schema = _stricter(TypeAdapter(DeploymentTriggerTypes).json_schema())
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(generate())
    print(f"wrote {TARGET}", file=sys.stderr)
