"""A flows project for the benchmark: N flows, their manifest (flows.yaml) and the equivalent prefect.yaml.

Both files describe the same deployments (names, entrypoints, work pool, queue, parameters, tags,
description), so `prefect deploy --all` and `flow-register deploy` register the same N deployments.
The manifest carries no image (nothing to build); prefect.yaml has no build or push steps and one pull step
that sets the working directory, the way a project without an image is deployed with `prefect deploy`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import yaml

PROJECT = "bench"
ENVIRONMENT = "bench"
POOL = "bench-pool"
QUEUE = "default"

# flow-register tags what it registers; prefect.yaml gets the same tags, so both registrations are alike.
OWNERSHIP_TAGS = ["managed-by:flow-register", f"project:{PROJECT}", f"environment:{ENVIRONMENT}"]

# Every flow's signature differs (names and types rotate), as in a real repository: a tool cannot get
# away with building one parameter schema for all of them.
EXTRA_PARAMETERS = (
    ("tables_{i}", "list[str] | None", "None", "Tables to load; all when empty."),
    ("threshold_{i}", "float", "0.5", "Rows scoring below this are dropped."),
    ("mode_{i}", 'Literal["full", "incremental"]', '"incremental"', "Reload everything or only what is new."),
    ("since_{i}", "date | None", "None", "First day to load; yesterday when empty."),
    ("options_{i}", "dict[str, int] | None", "None", "Extra options passed to the loader."),
    ("dry_run_{i}", "bool", "False", "Read but do not write."),
)

FLOW_TEMPLATE = '''

@flow(name="{flow_name}", log_prints=True)
def {function}(region: str = "eu", days: int = 7, {extra}) -> int:
    """Benchmark flow {index}: load `days` days for one region.

    Args:
        region: Where the data comes from.
        days: How many days to load.
{extra_doc}
    """
    return days
'''


def _flow_source(f: "BenchFlow") -> str:
    extras = [EXTRA_PARAMETERS[(f.index + k) % len(EXTRA_PARAMETERS)] for k in range(2)]
    return FLOW_TEMPLATE.format(
        flow_name=f.flow_name, function=f.function, index=f.index,
        extra=", ".join(f"{name.format(i=f.index)}: {type_} = {default}" for name, type_, default, _ in extras),
        extra_doc="\n".join(f"        {name.format(i=f.index)}: {doc}" for name, _, _, doc in extras),
    )


@dataclass(frozen=True)
class BenchFlow:
    index: int
    file: str  # relative to the project root
    function: str
    flow_name: str
    deployment: str

    @property
    def entrypoint(self) -> str:
        return f"{self.file}:{self.function}"

    @property
    def parameters(self) -> dict:
        return {"region": ("eu", "us", "apac")[self.index % 3], "days": 1 + self.index % 7}

    edited: bool = False  # the `one-changed` phase: this deployment's description is not the one registered

    @property
    def description(self) -> str:
        return f"Benchmark deployment {self.index}" + (" (edited)" if self.edited else "")


def bench_flows(count: int, per_file: int) -> list[BenchFlow]:
    return [BenchFlow(index=i, file=f"flows/group_{i // per_file:03d}.py", function=f"load_{i:03d}",
                      flow_name=f"bench-load-{i:03d}", deployment=f"bench-{i:03d}")
            for i in range(count)]


def manifest(flows: list[BenchFlow], pool_type: str) -> dict:
    return {
        "version": 1,
        "project": PROJECT,
        "defaults": {"work_pool": {"name": POOL, "type": pool_type}, "work_queue": QUEUE, "tags": ["bench"]},
        "environments": {ENVIRONMENT: {}},
        "deployments": [{"name": f.deployment, "entrypoint": f.entrypoint, "description": f.description,
                         "parameters": f.parameters} for f in flows],
    }


def prefect_yaml(flows: list[BenchFlow], root: Path) -> dict:
    return {
        "name": PROJECT,
        "prefect-version": "3.8.8",
        "build": None,
        "push": None,
        "pull": [{"prefect.deployments.steps.set_working_directory": {"directory": str(root)}}],
        "deployments": [{
            "name": f.deployment,
            "entrypoint": f.entrypoint,
            "description": f.description,
            "parameters": f.parameters,
            "tags": ["bench", *OWNERSHIP_TAGS],
            "schedules": [],
            "work_pool": {"name": POOL, "work_queue_name": QUEUE, "job_variables": {}},
        } for f in flows],
    }


def generate(root: Path, count: int = 50, per_file: int = 1, pool_type: str = "docker") -> list[BenchFlow]:
    """Write the project under `root` (replacing an earlier one) and return its flows."""
    root = root.resolve()
    flows = bench_flows(count, per_file)
    (root / "flows").mkdir(parents=True, exist_ok=True)
    for old in (root / "flows").glob("*.py"):
        old.unlink()
    by_file: dict[str, list[BenchFlow]] = {}
    for f in flows:
        by_file.setdefault(f.file, []).append(f)
    for file, members in by_file.items():
        body = "".join(_flow_source(f) for f in members)
        (root / file).write_text(f'"""Generated by bench/generate.py."""\n\nfrom datetime import date\nfrom typing import Literal\n\n'
                                 f'from prefect import flow\n{body}')
    write_deployments(root, flows, pool_type)
    return flows


def write_deployments(root: Path, flows: list[BenchFlow], pool_type: str, edit_one: bool = False) -> None:
    """flows.yaml and prefect.yaml; with `edit_one`, the first deployment's description changed in both."""
    if edit_one:
        flows = [replace(flows[0], edited=True), *flows[1:]]
    (root / "flows.yaml").write_text(yaml.safe_dump(manifest(flows, pool_type), sort_keys=False))
    (root / "prefect.yaml").write_text(yaml.safe_dump(prefect_yaml(flows, root.resolve()), sort_keys=False))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the benchmark's flows project.")
    parser.add_argument("root", type=Path)
    parser.add_argument("--flows", type=int, default=50)
    parser.add_argument("--flows-per-file", type=int, default=1)
    parser.add_argument("--pool-type", default="docker", choices=["docker", "process"])
    args = parser.parse_args()
    generate(args.root, args.flows, args.flows_per_file, args.pool_type)
    print(f"wrote {args.flows} flows, flows.yaml and prefect.yaml under {args.root}")
