"""The registrar image: its size, and how long `docker run` takes to print its first line and to exit.

    uv run python bench/image.py [--image TAG ...] [--flows 50] [--runs 5]

Each image (default flow-register-test/registrar:local, which tests/e2e/test_registrar_image.py builds
from this checkout) is run `--runs` times, timed from `docker run` to the first line on stdout or stderr
and to exit, in two ways:

- `action`: the image's entry point as the action runs it (INPUT_* variables, host network, the
  workspace mounted), in a generated project of N flows, a dry run (the plan, nothing written) against a
  local Prefect server that holds none of them;
- `validate`: `flow-register validate` of the same manifest (no server).

The Docker engine is the test services' (`bash .ci/services up`), or DOCKER_HOST.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from bench.generate import ENVIRONMENT, generate  # noqa: E402
from bench.run import client_env, create_pool  # noqa: E402
from devtools.local_server import start  # noqa: E402
from support.services import services_env  # noqa: E402

DEFAULT_IMAGE = "flow-register-test/registrar:local"


def first_line_and_exit(argv: list[str], env: dict) -> tuple[float, float, str]:
    """Seconds to the first output line and to exit, and that line."""
    began = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    first = time.perf_counter() - began
    process.communicate()
    return first, time.perf_counter() - began, line.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", action="append", help=f"an image to measure (repeatable; default {DEFAULT_IMAGE})")
    parser.add_argument("--flows", type=int, default=50, help="flows in the generated project (default 50)")
    parser.add_argument("--runs", type=int, default=5, help="runs per image and way (default 5; medians shown)")
    args = parser.parse_args(argv)

    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    env.setdefault("DOCKER_HOST", services_env()["DOCKER_HOST"])
    work = Path(tempfile.mkdtemp(prefix="bench-image-"))
    project = work / "project"
    generate(project, args.flows)
    print("bench: starting a local Prefect server ...", flush=True)
    server = start(work / "server")
    try:
        create_pool(client_env(server.api_url, work / "home", bytecode=False), "docker", work / "logs")
        rows = measure(args, env, project, server.api_url)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.flows} flows, {args.runs} runs each (medians), load average {os.getloadavg()[0]:.2f}")
    print(f"{'image':<50}{'MB':>6}  {'way':<9}{'first line s':>13}{'exit s':>8}  first line")
    for image, size, way, first, done, line in rows:
        print(f"{image:<50}{size:>6.0f}  {way:<9}{first:>13.2f}{done:>8.2f}  {line[:70]}")
    return 0


def measure(args, env: dict, project: Path, api_url: str) -> list[tuple]:
    docker = ["docker", "run", "--rm", "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}",
              "--env", "HOME=/tmp", "--volume", f"{project}:{project}", "--workdir", str(project)]
    inputs = {"INPUT_ENVIRONMENT": ENVIRONMENT, "INPUT_PREFECT_API_URL": api_url, "INPUT_DRY_RUN": "true",
              "GITHUB_WORKSPACE": str(project)}
    ways = {
        "action": [*docker, *(f"--env={k}={v}" for k, v in inputs.items())],
        "validate": [*docker, "--entrypoint", "flow-register"],
    }
    images = args.image or [DEFAULT_IMAGE]
    sizes = {}
    for image in images:
        inspected = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image], env=env,
                                   capture_output=True, text=True)
        if inspected.returncode != 0:
            raise SystemExit(f"bench: no image {image} in the engine at {env['DOCKER_HOST']}: build it "
                             "(FLOW_REGISTER_NO_SKIP=1 uv run pytest tests/e2e/test_registrar_image.py tags "
                             f"{DEFAULT_IMAGE})")
        sizes[image] = int(inspected.stdout) / 1e6
    commands = {(image, way): [*prefix, image, *(["validate"] if way == "validate" else [])]
                for image in images for way, prefix in ways.items()}
    for command in commands.values():
        first_line_and_exit(command, env)  # untimed: the page cache, not the image, would be measured
    # Interleaved, so that the load other processes put on the machine falls on every image alike.
    timings: dict[tuple, list] = {key: [] for key in commands}
    for _ in range(args.runs):
        for key, command in commands.items():
            timings[key].append(first_line_and_exit(command, env))
    rows = []
    for (image, way), runs in timings.items():
        rows.append((image, sizes[image], way, statistics.median(t[0] for t in runs),
                     statistics.median(t[1] for t in runs), runs[-1][2]))
        print(f"  {image} {way}: " + " ".join(f"{a:.2f}/{b:.2f}" for a, b, _ in runs), flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
