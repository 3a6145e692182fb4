#!/usr/bin/env python3
"""Write the README's reference sections from their sources, so they cannot drift from them:

- the action's inputs and outputs, from action.yml;
- the manifest reference, from schemas/manifest.schema.json;
- the exit codes, from register/problems.py;

and the parts of schemas/manifest.schema.json that are declared in code: each deployment field's settings
(register/prefect/fields.py) and the work pool types (register/prefect/resources.py: POOL_TYPES).

    python scripts/reference.py          # rewrite the generated sections of README.md and the schema's parts
    python scripts/reference.py --check  # exit 1 if README.md or the schema is not what this would write

Each section sits between `<!-- generated: NAME -->` and `<!-- end: NAME -->` in README.md.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ACTION = ROOT / "action.yml"
SCHEMA = ROOT / "schemas" / "manifest.schema.json"

# The manifest's parts, in the order a reader meets them; each gets a table of its fields.
SECTIONS = {
    "deployment": "deployments[]",
    "deployment_override": "deployments[].environments.<env>",
    "environment": "environments.<env>",
    "defaults": "defaults",
    "image": "image",
    "image_override": "environments.<env>.image",
    "work_pool": "work_pool",
    "concurrency_limit": "concurrency_limit",
    "resources": "resources",
    "schedule": "schedules[]",
    "trigger": "triggers[]",
    "code": "code",
    "git": "code.git",
    "git_credentials": "code.git.credentials",
    "variable": "variables[]",
    "variable_override": "variables[].environments.<env>",
    "webhook": "webhooks[]",
    "webhook_override": "webhooks[].environments.<env>",
    "block": "blocks[]",
    "block_override": "blocks[].environments.<env>",
    "s3_code": "code.s3",
    "gcs_code": "code.gcs",
}


def cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped, and `<` and `>` outside code spans
    escaped, or GitHub would take `<project>` for an HTML tag and drop it."""
    parts = " ".join(str(text).split()).replace("|", "\\|").split("`")
    return "`".join(part if i % 2 else html.escape(part, quote=False) for i, part in enumerate(parts))


def anchor(name: str) -> str:
    return f"manifest-{name.replace('_', '-')}"


class Schema:
    def __init__(self, schema: dict):
        self.schema = schema
        self.defs = schema.get("$defs", {})

    def resolve(self, node: dict) -> tuple[str | None, dict]:
        ref = node.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            return name, self.defs[name]
        return None, node

    def type_of(self, node: dict) -> str:
        """The type in a reader's words. `null` is left out: anywhere it is allowed it means
        "remove the inherited setting", which the reference says once."""
        name, target = self.resolve(node)
        if name in SECTIONS:
            return f"[{html.escape(SECTIONS[name])}](#{anchor(name)})"
        if name == "slug":
            return "slug"
        if "const" in target:
            return f"`{json.dumps(target['const'])}`"
        if "enum" in target:
            return " | ".join(f"`{value}`" for value in target["enum"])
        alternatives = [a for a in target.get("oneOf") or target.get("anyOf") or [] if a.get("type") != "null"]
        if alternatives and all("type" in a or "$ref" in a for a in alternatives):
            return " or ".join(self.type_of(a) for a in alternatives)
        kinds = target.get("type")
        kinds = [k for k in (kinds if isinstance(kinds, list) else [kinds]) if k != "null"]
        return " or ".join(self.single_type(kind, target) for kind in kinds) or "any"

    def single_type(self, kind: str | None, target: dict) -> str:
        if kind == "array":
            items = target.get("items")
            return f"list of {self.type_of(items)}" if items else "list"
        if kind == "object":
            values = target.get("additionalProperties")
            return f"map of {self.type_of(values)}" if isinstance(values, dict) else "mapping"
        if kind in ("number", "integer") and target.get("exclusiveMinimum") == 0:
            return f"{kind} > 0"
        return kind or "any"

    def description(self, node: dict) -> str:
        text = node.get("description")
        if not text:
            _, target = self.resolve(node)
            text = target.get("description", "")
        if "default" in node:
            text += f" Default `{json.dumps(node['default'])}`."
        return text

    def table(self, node: dict) -> str:
        required = set(node.get("required", []))
        rows = ["| field | type | |", "|---|---|---|"]
        for field, prop in node.get("properties", {}).items():
            mark = " (required)" if field in required else ""
            rows.append(f"| `{field}`{mark} | {cell(self.type_of(prop))} | {cell(self.description(prop))} |")
        return "\n".join(rows)


def manifest_reference(schema: dict) -> str:
    s = Schema(schema)
    parts = [
        f"The manifest's JSON Schema is [`schemas/manifest.schema.json`](schemas/manifest.schema.json); "
        "editors that read `# yaml-language-server: $schema=...` complete and check it as you type.",
        "",
        "#### The manifest",
        "",
        cell(schema.get("description", "")),
        "",
        s.table(schema),
    ]
    for name, title in SECTIONS.items():
        node = s.defs[name]
        parts += ["", f'<a id="{anchor(name)}"></a>', f"#### `{title}`", "", cell(node.get("description", ""))]
        if "properties" in node:
            parts += ["", s.table(node)]
        elif name in ("work_pool", "concurrency_limit"):
            short = {"work_pool": "A string (the pool's name)", "concurrency_limit": "A whole number (the limit)"}
            parts += ["", f"{short[name]} or a mapping:", "",
                      s.table(next(a for a in node["oneOf"] if a.get("type") == "object"))]
    for name in ("cpu", "memory"):
        parts += ["", f"`{name}`: {cell(s.defs[name].get('description', ''))}"]
    return "\n".join(parts)


def inputs_table(action: dict) -> str:
    rows = ["| input | default | |", "|---|---|---|"]
    for name, spec in action["inputs"].items():
        default = spec.get("default", "")
        default = "**required**" if spec.get("required") else (f"`{default}`" if default != "" else "")
        rows.append(f"| `{name}` | {default} | {cell(spec.get('description', ''))} |")
    return "\n".join(rows)


def outputs_table(action: dict) -> str:
    rows = ["| output | |", "|---|---|"]
    for name, spec in action["outputs"].items():
        rows.append(f"| `{name}` | {cell(spec.get('description', ''))} |")
    return "\n".join(rows)


def exit_codes_table() -> str:
    sys.path.insert(0, str(ROOT))
    from register.problems import Detailed, Exit

    rows = ["| exit | |", "|---|---|"] + [f"| {code:d} | {cell(code.meaning)} |" for code in Exit]
    rows += ["", "`plan --detailed-exitcode` (for a drift check, as Terraform's): " +
             "; ".join(f"{code:d} {code.meaning}" for code in Detailed) + "."]
    return "\n".join(rows)


def schema_text() -> str:
    """schemas/manifest.schema.json with the deployment fields' settings and the pool types as declared."""
    sys.path.insert(0, str(ROOT))
    from register.prefect import fields, resources

    return json.dumps(resources.schema(fields.schema(json.loads(SCHEMA.read_text()))), indent=2) + "\n"


def sections(schema_json: str | None = None) -> dict[str, str]:
    action = yaml.safe_load(ACTION.read_text())
    schema = json.loads(schema_json or SCHEMA.read_text())
    return {"inputs": inputs_table(action), "outputs": outputs_table(action),
            "manifest-reference": manifest_reference(schema), "exit-codes": exit_codes_table()}


def render(readme: str, generated: dict[str, str]) -> str:
    for name, body in generated.items():
        pattern = re.compile(rf"(<!-- generated: {re.escape(name)} -->\n).*?(<!-- end: {re.escape(name)} -->)", re.S)
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no '<!-- generated: {name} -->' ... '<!-- end: {name} -->' section")
        readme = pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    args = parser.parse_args(argv)
    current = README.read_text()
    schema_now, schema_wanted = SCHEMA.read_text(), schema_text()
    wanted = render(current, sections(schema_wanted))
    if args.check:
        stale = [name for name, now, want in (("README.md's reference sections", current, wanted),
                                              ("schemas/manifest.schema.json", schema_now, schema_wanted))
                 if now != want]
        for name in stale:
            print(f"{name} out of date: run `uv run python scripts/reference.py`", file=sys.stderr)
        return 1 if stale else 0
    if schema_wanted != schema_now:
        SCHEMA.write_text(schema_wanted)
        print("schemas/manifest.schema.json: deployment fields and pool types rewritten")
    if wanted != current:
        README.write_text(wanted)
        print("README.md: reference sections rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
