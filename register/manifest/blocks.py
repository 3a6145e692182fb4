"""`blocks:` in the manifest: the block types it knows, each block resolved per environment, and the checks
of what the schema cannot say (a known type, that type's fields, secret fields only from the environment).

The block types are those of Prefect, prefect-aws and prefect-gcp, read from their own block classes by
scripts/block_types.py into block_types.json (type, schema, checksum, secret fields), so neither a check
nor a deploy imports Prefect or an integration (the registrar's image carries neither integration).

A secret field is one the block type marks secret: Prefect lists them in its schema's `secret_fields`
(SecretStr, SecretDict, `format: password`); a dotted entry under a field that holds another block is
that block's own. Its value must be exactly one `${VAR}` in the manifest (the action fills it from a
GitHub secret passed in `env:`), so a secret is never committed with the flows; messages never repeat it.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema

from register.problems import one_of

CATALOG = Path(__file__).with_name("block_types.json")
ENVIRONMENT_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")  # exactly `${NAME}`, no default


@dataclass(frozen=True)
class BlockType:
    """One block type as its package's block class describes it."""

    slug: str
    package: str
    block_type: dict  # what POST /block_types/ takes
    schema: dict  # the block schema's `fields` (a JSON Schema)
    checksum: str
    version: str
    capabilities: tuple

    @property
    def properties(self) -> dict:
        return self.schema.get("properties") or {}

    @property
    def required(self) -> list[str]:
        return list(self.schema.get("required") or [])

    @property
    def references(self) -> dict[str, list[str]]:
        """Fields that hold another block: field -> the block type slugs it takes."""
        out = {}
        for name, refs in (self.schema.get("block_schema_references") or {}).items():
            refs = refs if isinstance(refs, list) else [refs]
            out[name] = [r["block_type_slug"] for r in refs]
        return out

    @property
    def secrets(self) -> list[str]:
        """The top-level fields holding a secret of this block itself (not of a block it holds)."""
        found = {entry.split(".", 1)[0] for entry in self.schema.get("secret_fields") or []}
        found |= {name for name, prop in self.properties.items() if prop.get("format") == "password"}
        return sorted(found - set(self.references))

    def takes_object_only(self, name: str) -> bool:
        """A field whose values are mappings only (a SecretDict such as gcp-credentials'
        service_account_info): a string from the environment is read as JSON."""
        prop = self.properties.get(name) or {}
        kinds = [b.get("type") for b in prop.get("anyOf", [prop])]
        return "object" in kinds and "string" not in kinds and None not in kinds

    def validator(self, name: str) -> jsonschema.Draft7Validator:
        return jsonschema.Draft7Validator({"definitions": self.schema.get("definitions") or {},
                                           **(self.properties.get(name) or {})})


@cache
def catalog() -> dict[str, BlockType]:
    data = json.loads(CATALOG.read_text())["block_types"]
    return {slug: BlockType(slug, entry["package"], entry["block_type"], entry["block_schema"]["fields"],
                            entry["block_schema"]["checksum"], entry["block_schema"]["version"],
                            tuple(entry["block_schema"]["capabilities"]))
            for slug, entry in data.items()}


@dataclass
class Block:
    """One block document as it should be on the server, in one environment."""

    type: str
    name: str
    index: int  # its position in `blocks`, for error positions
    fields: dict = field(default_factory=dict, repr=False)  # secrets included: never print or log this
    secrets: tuple = ()  # the names of its secret fields

    @property
    def key(self) -> str:
        return f"{self.type}/{self.name}"


def _fields(entry: dict, environment: str) -> dict:
    fields = dict(entry.get("fields") or {})
    override = ((entry.get("environments") or {}).get(environment) or {}).get("fields") or {}
    for name, value in override.items():
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields


def _enabled(entry: dict, environment: str) -> bool:
    override = (entry.get("environments") or {}).get(environment) or {}
    return override.get("enabled", entry.get("enabled", True)) is not False


def resolve_blocks(manifest: dict, environment: str) -> list[Block] | None:
    """`environment`'s blocks; None when the manifest has no `blocks:` (it manages none, and prunes none).
    Assumes the checks passed (a block of an unknown type is left out)."""
    entries = manifest.get("blocks")
    if entries is None:
        return None
    known = catalog()
    out = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("type") not in known or not _enabled(entry, environment):
            continue
        kind = known[entry["type"]]
        fields = _fields(entry, environment)
        for name in kind.secrets:
            if isinstance(fields.get(name), str) and kind.takes_object_only(name):
                try:
                    fields[name] = json.loads(fields[name])
                except ValueError:
                    pass  # reported by `check`
        out.append(Block(entry["type"], entry["name"], index, fields, tuple(kind.secrets)))
    return out


def _leaves(value, path: tuple):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, path + (i,))
    else:
        yield path, value


def check(report, data: dict, declared: list[str], source, checked: list[str] | None = None) -> None:
    """Every mistake in `blocks`, at its place; a secret's value is never part of a message. An empty secret
    is one only where the block is registered in an environment being checked (`checked`, default all):
    dev's job has no value for a block only prod registers."""
    checked = declared if checked is None else checked
    if not data.get("blocks"):
        return
    known = catalog()
    seen: dict[str, int] = {}
    for index, entry in enumerate(data["blocks"]):
        if not isinstance(entry, dict):
            continue
        slug, name = entry["type"], entry["name"]
        at = ("blocks", index)
        if slug not in known:
            close = difflib.get_close_matches(slug, known, n=3, cutoff=0.5)
            hint = f"did you mean {one_of(close)}? " if close else ""
            report.at(at + ("type",), f"unknown block type '{slug}'; {hint}the block types of Prefect, prefect-aws and "
                                      f"prefect-gcp are {one_of(sorted(known))}", "block-type")
            continue
        kind = known[slug]
        if f"{slug}/{name}" in seen:
            report.at(at + ("name",), f"block '{slug}/{name}' is already declared by blocks[{seen[f'{slug}/{name}']}]; "
                                      "a block type's names must be unique", "duplicate-name")
        seen.setdefault(f"{slug}/{name}", index)
        registered = [env for env in checked if _enabled(entry, env)]
        places = [(at + ("fields",), entry.get("fields") or {}, bool(registered))]
        for env, override in (entry.get("environments") or {}).items():
            if env not in declared:
                report.at(at + ("environments", env),
                          f"environment '{env}' is not declared; declared environments are {one_of(declared)}",
                          "unknown-environment", key=True)
            elif isinstance(override, dict) and isinstance(override.get("fields"), dict):
                places.append((at + ("environments", env, "fields"), override["fields"], env in registered))
        for where, fields, used in places:
            for field_name, value in fields.items():
                _field(report, kind, where + (field_name,), field_name, value, source, removing=len(where) > 3,
                       used=used)
        for env in declared:
            if not _enabled(entry, env):
                continue
            missing = [f for f in kind.required if f not in _fields(entry, env)]
            if missing:
                report.at(at + ("fields",), f"block '{slug}/{name}' lacks the required field{'s' if len(missing) > 1 else ''}"
                                            f" {one_of(missing).replace(' or ', ' and ')} in environment '{env}'",
                          "block-field")


def _field(report, kind: BlockType, path: tuple, name: str, value, source, *, removing: bool,
           used: bool = True) -> None:
    slug = kind.slug
    where = f"blocks[{path[1]}].{'.'.join(str(p) for p in path[2:])}"
    if name not in kind.properties:
        close = difflib.get_close_matches(name, kind.properties, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        report.at(path, f"unknown field '{name}' of block type '{slug}'; {hint}its fields are "
                        f"{one_of(sorted(kind.properties))}", "block-field", key=True)
        return
    if value is None and removing:
        return
    if name in kind.references:
        allowed = kind.references[name]
        text = value.get("block") if isinstance(value, dict) and set(value) == {"block"} else None
        if not isinstance(text, str) or text.split("/", 1)[0] not in allowed or "/" not in text:
            report.at(path, f"{where} holds another block: write {{block: TYPE/NAME}} with TYPE {one_of(allowed)}, "
                            f"e.g. {{block: {allowed[0]}/prod}}", "block-reference")
        return
    if name in kind.secrets:
        plain = [leaf for leaf, _ in _leaves(value, path)
                 if not ENVIRONMENT_REFERENCE.fullmatch(source.written.get(leaf, "") if source else "")]
        if plain:
            report.at(plain[0], f"{where} is a secret field of block type '{slug}': write it as ${{VAR}} alone (in the "
                                f"action: env: {{VAR: ${{{{ secrets.VAR }}}}}}); a secret never belongs in the manifest",
                      "block-secret")
            return
        empty = [leaf for leaf, text in _leaves(value, path) if text == ""] if used else []
        if empty:  # a GitHub secret not defined for this job is an empty string: never written over a real one
            variable = source.written[empty[0]][2:-1]
            report.at(empty[0], f"{where} is a secret field of block type '{slug}', and environment variable "
                                f"'{variable}' is empty: is its secret defined for this job's environment?",
                      "block-secret")
            return
        if isinstance(value, str) and kind.takes_object_only(name):
            try:
                value = json.loads(value)
            except ValueError:
                report.at(path, f"{where} takes a mapping: the environment variable must hold JSON (its value is not "
                                "shown)", "block-field")
                return
    errors = sorted(kind.validator(name).iter_errors(value), key=lambda e: e.path)
    if errors:
        shown = "a value" if name in kind.secrets else json.dumps(value, default=str)[:80]
        expected = _expected(kind.properties[name])
        report.at(path, f"{where}: {shown} is not what block type '{slug}' takes here"
                        + (f" ({expected})" if expected else ""), "block-field")


def _expected(prop: dict) -> str:
    kinds = [b.get("type") for b in prop.get("anyOf", [prop]) if b.get("type") not in (None, "null")]
    if prop.get("enum"):
        return f"one of {one_of(prop['enum'])}"
    names = {"string": "a string", "integer": "a whole number", "number": "a number", "boolean": "true or false",
             "object": "a mapping", "array": "a list"}
    return " or ".join(dict.fromkeys(names.get(k, k) for k in kinds)) if kinds else ""
