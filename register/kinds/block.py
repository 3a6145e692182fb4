"""Prefect block documents: `blocks:` in the manifest (register/manifest/blocks.py), by type and fields.

**Ownership.** A block document has no tags, so flow-register keeps a record on the server of each block it
wrote: a Prefect variable `flow-register-block-<digest>` (digest of project, environment and block; tags
`flow-register-record:blocks`, `project:<p>`, `environment:<e>`, but not `managed-by:flow-register`, so no
variables section prunes it) whose value names the block (`TYPE/NAME`), its id, the fingerprint of its
non-secret fields and the `updated` time the server gave its last write. A block is this project's and
environment's only when such a record names it with its id: a block of the same name made by hand (or remade
by hand after ours was deleted: another id) is a conflict, refused before any write; prune deletes only
recorded blocks. The record is written before a block is created (with no id yet, so a run stopped between
the two still owns what it made) and after every write; one record per block, so writes made side by side
never race on a shared one, and no size limit of a variable's value caps how many blocks a project has.

**Drift.** The server sets a block's `updated` on every write; a block whose `updated` differs from the
record's was written by someone else since: its changes are drift when the manifest's non-secret fields are
what flow-register wrote last (the engine's rule, register/engine/planner.py).

**Secrets.** They are read with `include_secrets` into memory only (`BlockItem.secrets`, never in `fields`,
which reports show): a difference is a `SecretChange` ("secret changed"), never a value or a digest of one.
The record's fingerprints leave them out too: a digest of a short secret could be guessed from it.

**Block types** the server lacks are registered from the catalog of Prefect's, prefect-aws's and
prefect-gcp's own block classes (register/manifest/block_types.json), with the block types their fields
hold, as `prefect block register` would.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

from register.engine.kind import Change, Item, Kind
from register.manifest.blocks import Block, catalog
from register.server import ServerError

RECORD_TAG = "flow-register-record:blocks"
RECORD_PREFIX = "flow-register-block-"
SECRET = "(secret)"
REFERENCE_WAIT = 60.0  # seconds a block waits for a block it holds that this apply writes beside it


@dataclass
class BlockItem(Item):
    """A block as the plan compares it: `fields` = {"data": its non-secret fields (a block it holds as
    {"block": "TYPE/NAME"}), "secret_fields": the names of its secret fields}; `secrets` apart."""

    secrets: dict = field(default_factory=dict, repr=False, compare=False)
    type: str = ""
    block: str = ""  # the block document's own name (`name` is the key, TYPE/NAME)


class SecretChange(Change):
    """A secret field whose value differs: said as "secret changed", never shown."""

    secret = True

    def __init__(self, name: str):
        super().__init__(name, SECRET, "(secret changed)")


def record_name(project: str, environment: str, key: str) -> str:
    return RECORD_PREFIX + hashlib.sha256(f"{project}\0{environment}\0{key}".encode()).hexdigest()[:32]


def _owner(owner_tags: list[str]) -> tuple[str, str]:
    pick = lambda prefix: next(t.split(":", 1)[1] for t in owner_tags if t.startswith(prefix))  # noqa: E731
    return pick("project:"), pick("environment:")


def _owner_tags(project: str, environment: str) -> list[str]:
    from register.manifest.resolve import ownership_tags

    return ownership_tags(project, environment)


# -- desired --------------------------------------------------------------------------------------------

def desired(manifest, environment: str) -> list[Item] | None:
    blocks = manifest.blocks(environment)
    return None if blocks is None else items(blocks, manifest.project, environment)


def items(blocks: list[Block], project: str, environment: str) -> list[Item]:
    """The manifest's blocks, a block another one holds first (so a single writer writes it first)."""
    out = []
    for b in blocks:
        data = {k: v for k, v in b.fields.items() if k not in b.secrets}
        out.append(BlockItem(b.key, {"data": data, "secret_fields": sorted(k for k in b.fields if k in b.secrets)},
                             tags=_owner_tags(project, environment), index=b.index,
                             secrets={k: v for k, v in b.fields.items() if k in b.secrets}, type=b.type, block=b.name))
    held = {ref for i in out for ref in _references(i)}
    return sorted(out, key=lambda i: i.name not in held)


def _references(item: Item) -> list[str]:
    return [v["block"] for v in item.fields["data"].values() if isinstance(v, dict) and set(v) == {"block"}]


# -- read -----------------------------------------------------------------------------------------------

def _records(server) -> dict[tuple[str, str], dict]:
    """Every project's and environment's records: (project, environment) -> {key: [id, fingerprint, updated]}.
    Server data: a record that is malformed, or not at the name its content gives, counts as none."""
    out: dict[tuple[str, str], dict] = {}
    for raw in server.tagged_variables(RECORD_TAG):
        value = raw.get("value")
        if not isinstance(value, dict):
            continue
        project, environment, key = value.get("project"), value.get("environment"), value.get("block")
        if not all(isinstance(v, str) for v in (project, environment, key)) or \
                raw.get("name") != record_name(project, environment, key):
            continue
        out.setdefault((project, environment), {})[key] = [value.get("id"), value.get("fingerprint"),
                                                           value.get("updated")]
    return out


def _registered(raw: dict, owners: dict) -> BlockItem:
    """A block document from the server, with its owner's tags (none: made by hand) and, when someone else
    wrote it since flow-register did, the fingerprint flow-register wrote (so a hand edit reads as drift)."""
    slug = (raw.get("block_type") or {}).get("slug") or ""
    key = f"{slug}/{raw['name']}"
    kind = catalog().get(slug)
    secret_names = set(kind.secrets) if kind else set()
    data = dict(raw.get("data") or {})
    for name, ref in (raw.get("block_document_references") or {}).items():  # a block it holds, by name
        held = (ref or {}).get("block_document") or {}
        data[name] = {"block": f"{(held.get('block_type') or {}).get('slug')}/{held.get('name')}"}
    tags, written = [], None
    for (project, environment), blocks in owners.items():
        entry = blocks.get(key)
        if entry and entry[0] in (None, str(raw["id"])):
            tags = _owner_tags(project, environment)
            written = entry[1] if entry[2] != raw.get("updated") else None
            break
    secrets = {k: v for k, v in data.items() if k in secret_names}
    data = {k: v for k, v in data.items() if k not in secret_names and v is not None}
    return BlockItem(key, {"data": data, "secret_fields": sorted(k for k, v in secrets.items() if v is not None)},
                     tags=tags, id=str(raw["id"]), last_written=written, secrets=secrets, type=slug, block=raw["name"])


def read(server, names: list[str], owner_tags: list[str]) -> list[Item]:
    owners = _records(server)
    mine = owners.get(_owner(owner_tags), {})
    keys = set(names) | set(mine)
    raw = server.block_documents([k.split("/", 1)[0] for k in keys], [k.split("/", 1)[1] for k in keys],
                                 [v[0] for v in mine.values() if v[0]])
    found = [_registered(r, owners) for r in raw]
    return [i for i in found if i.name in keys]


# -- compare --------------------------------------------------------------------------------------------

def compare(want: Item, have: Item) -> list[Change]:
    same = lambda a, b: json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)  # noqa: E731
    ours, theirs = want.fields["data"], have.fields["data"]
    changes: list[Change] = [Change(name, theirs.get(name), ours.get(name)) for name in sorted(set(ours) | set(theirs))
                             if not same(ours.get(name), theirs.get(name))]
    want_secrets = getattr(want, "secrets", {})
    have_secrets = getattr(have, "secrets", {})
    changes += [SecretChange(name) for name in sorted(set(want_secrets) | {k for k, v in have_secrets.items()
                                                                           if v is not None})
                if not same(want_secrets.get(name), have_secrets.get(name))]
    return changes


# -- write ----------------------------------------------------------------------------------------------

_known: dict[tuple[str, str], tuple[str, str]] = {}  # (server, slug) -> (block type id, block schema id)


def _ensure_type(server, slug: str) -> tuple[str, str]:
    """The ids of `slug`'s block type and of the catalog's schema of it on the server, registered when the
    server lacks them (the block types its fields hold first)."""
    if (server.url, slug) in _known:
        return _known[(server.url, slug)]
    kind = catalog()[slug]
    for held in dict.fromkeys(s for slugs in kind.references.values() for s in slugs):
        _ensure_type(server, held)
    type_id = server.block_type_id(slug) or server.create_block_type(kind.block_type)
    schema_id = server.block_schema_id(kind.checksum, kind.version) or server.create_block_schema(
        {"block_type_id": type_id, "fields": kind.schema, "capabilities": list(kind.capabilities),
         "version": kind.version}, slug)
    _known[(server.url, slug)] = (type_id, schema_id)
    return type_id, schema_id


def _held_id(server, key: str) -> str:
    """The id of a block this one holds; one this apply writes beside it is waited for."""
    slug, name = key.split("/", 1)
    deadline = time.monotonic() + REFERENCE_WAIT
    while True:
        found = server.block_document(slug, name)
        if found is not None:
            return str(found["id"])
        if time.monotonic() > deadline:
            raise ServerError(f"block '{key}' is not on {server.url}: write it first, or declare it in the manifest")
        time.sleep(0.2)


def _secret_texts(item: BlockItem) -> list[str]:
    out = []

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif value is not None:
            out.append(str(value))
            out.append(json.dumps(value)[1:-1] if isinstance(value, str) else str(value))

    walk(item.secrets)
    return [s for s in out if s]


def _update_record(server, project: str, environment: str, key: str, entry: list | None) -> None:
    name = record_name(project, environment, key)
    if entry is None:
        server.delete_variable(name)
        return
    payload = {"name": name, "value": {"project": project, "environment": environment, "block": key,
                                       "id": entry[0], "fingerprint": entry[1], "updated": entry[2]},
               "tags": [RECORD_TAG, f"project:{project}", f"environment:{environment}"]}
    try:
        server.update_variable(payload)
    except ServerError as error:
        if error.status != 404:
            raise
        server.create_variable(payload)


def write(server, action) -> str | None:
    item: BlockItem = action.desired
    project, environment = _owner(item.tags)
    type_id, schema_id = _ensure_type(server, item.type)
    data = {}
    for name, value in item.fields["data"].items():
        data[name] = {"$ref": {"block_document_id": _held_id(server, value["block"])}} \
            if isinstance(value, dict) and set(value) == {"block"} else value
    data.update(item.secrets)
    hiding = _secret_texts(item)
    fingerprint = item.fingerprint()
    if action.kind == "create":
        _update_record(server, project, environment, item.name, [None, fingerprint, None])
        made = server.create_block_document({"name": item.block, "block_type_id": type_id,
                                             "block_schema_id": schema_id, "data": data}, item.type, hiding)
        block_id, updated = str(made["id"]), made.get("updated")
    else:
        block_id = action.id
        server.update_block_document(block_id, {"block_schema_id": schema_id, "data": data,
                                                "merge_existing_data": False}, item.name, hiding)
        updated = (server.block_document(item.type, item.block) or {}).get("updated")
    _update_record(server, project, environment, item.name, [block_id, fingerprint, updated])
    return block_id


def delete(server, action) -> None:
    have = action.registered
    server.delete_block_document(action.id, action.name)
    _update_record(server, *_owner(have.tags), have.name, None)


KIND = Kind("block", "blocks", desired=desired, read=read, compare=compare, write=write, delete=delete)
