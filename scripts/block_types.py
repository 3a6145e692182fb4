#!/usr/bin/env python3
"""Write register/manifest/block_types.json: the block types `blocks:` in the manifest knows, from the block
classes of Prefect, prefect-aws and prefect-gcp themselves (`Block._to_block_type()` and
`_to_block_schema()`, what `prefect block register` sends), so that a deploy registers a type the server
lacks without importing any of them (the registrar's image carries neither integration, and importing
Prefect costs seconds).

    uv run python scripts/block_types.py          # rewrite it from the installed packages
    uv run python scripts/block_types.py --check  # exit 1 if it is not what this would write

tests/unit/test_block_types.py runs the check: upgrading prefect, prefect-aws or prefect-gcp in uv.lock
without rewriting the file fails it.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "register" / "manifest" / "block_types.json"
PACKAGES = {"prefect": "prefect", "prefect_aws": "prefect-aws", "prefect_gcp": "prefect-gcp"}


def catalog() -> dict:
    import prefect.blocks.notifications  # noqa: F401  (each import registers its block classes)
    import prefect.blocks.system  # noqa: F401
    import prefect.blocks.webhook  # noqa: F401
    import prefect.filesystems  # noqa: F401
    import prefect_aws  # noqa: F401
    import prefect_gcp  # noqa: F401
    from prefect.blocks.core import Block
    from prefect.utilities.dispatch import get_registry_for_type

    types = {}
    for slug, cls in sorted((get_registry_for_type(Block) or {}).items()):
        package = PACKAGES.get(cls.__module__.split(".")[0])
        if package is None:
            continue
        block_type = cls._to_block_type().model_dump(mode="json", include={
            "name", "slug", "logo_url", "documentation_url", "description", "code_example"})
        schema = cls._to_block_schema(block_type_id=None).model_dump(mode="json", include={
            "fields", "checksum", "capabilities", "version"})
        schema["capabilities"] = sorted(schema["capabilities"])  # a set in Prefect: its order varies by run
        types[slug] = {"package": package, "block_type": block_type, "block_schema": schema}
    return {"generated_from": {p: version(p) for p in sorted(set(PACKAGES.values()))}, "block_types": types}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    text = json.dumps(catalog(), indent=1, sort_keys=True) + "\n"
    if parser.parse_args().check:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is not what scripts/block_types.py writes from the installed packages; run it",
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(Path.cwd()) if TARGET.is_relative_to(Path.cwd()) else TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
