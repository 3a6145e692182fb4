"""`prefect deploy --all` against `flow-register deploy`, side by side, on one local Prefect server
behind a loopback proxy that adds a round trip to every request (tests/support/proxy.py).

    uv run python bench/run.py [--flows 50,500] [--delays 0,50,150] [--phases cold,warm,one-changed]
                               [--rounds 1] [--flows-per-file 1] [--pool-type docker|process]
                               [--database sqlite|postgres] [--only prefect|flow-register] [--profile]
                               [--no-bytecode-cache] [--keep-server]

For each N of --flows and each delay of --delays, per round and tool: every flow and deployment on the
server is deleted (untimed), then the tool runs once per phase, timed from process start to exit: `cold`
(N new deployments), `warm` (again, nothing changed), `one-changed` (one deployment's description
edited in both files). The order of the two tools alternates between rounds. After each run the harness
checks that the server holds exactly the N expected deployments, counts how many the run wrote (their
`updated` moved) and the requests the proxy passed, and reads the tool's peak RSS.
Results: a table on stdout, and JSON, logs and profiles under bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))  # `python bench/run.py` puts bench/ first on the path, not the repository

from bench import postgres  # noqa: E402
from bench.generate import ENVIRONMENT, POOL, generate, write_deployments  # noqa: E402
from devtools.local_server import start  # noqa: E402
from register.server.client import BUSY_STATUSES  # noqa: E402
from tests.support.proxy import Proxy  # noqa: E402

OUT = BENCH / "out"
PYCACHE = OUT / "pycache"  # kept between runs; the shared venv stays untouched
BIN = Path(sys.executable).parent
TOOLS = ("prefect", "flow-register")
PHASES = ("cold", "warm", "one-changed")

# Fields both tools set from their file; compared once, to show the two register the same deployments.
COMPARED = ("name", "entrypoint", "work_pool_name", "work_queue_name", "parameters", "tags", "description",
            "parameter_openapi_schema", "job_variables", "paused", "concurrency_limit", "enforce_parameter_schema",
            "pull_steps", "path", "version", "schedules")


@dataclass
class Run:
    flows: int
    delay_ms: int
    round: int
    tool: str
    phase: str  # cold | warm | one-changed
    seconds: float
    written: int  # deployments whose `updated` moved in this run (created ones included)
    requests: int  # what the proxy passed to the server
    peak_rss_mb: float  # the tool's process (ru_maxrss)
    log: str
    routes: dict = field(default_factory=dict)  # requests by route, most first
    server_seconds: float = 0.0  # the server's time answering, summed over requests (the proxy's delay not in it)
    busy: int = 0  # answers 503 or 429: the server was too busy for the request
    reported: dict | None = None  # flow-register's own summary and request counts (--output json)


@dataclass
class Results:
    started: str
    machine: dict
    flows: list[int]
    delays_ms: list[int]
    phases: list[str]
    flows_per_file: int
    rounds: int
    pool_type: str
    bytecode_cache: bool
    database: str
    runs: list[Run] = field(default_factory=list)
    load_average: dict = field(default_factory=dict)  # 1-minute load before and after: others share the CPUs
    differences: list[str] = field(default_factory=list)
    profiles: dict = field(default_factory=dict)

    def of(self, flows: int, delay: int, tool: str, phase: str) -> list[Run]:
        return [r for r in self.runs if (r.flows, r.delay_ms, r.tool, r.phase) == (flows, delay, tool, phase)]

    def median(self, flows: int, delay: int, tool: str, phase: str, what: str = "seconds") -> float | None:
        runs = self.of(flows, delay, tool, phase)
        return statistics.median(getattr(r, what) for r in runs) if runs else None


class Server:
    """The few API calls the harness needs, outside both tools and untimed."""

    def __init__(self, api_url: str):
        self.http = httpx.Client(base_url=api_url, timeout=60)

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One request, retried while SQLite is busy (the server answers 503 when its database is locked)."""
        for attempt in range(20):
            response = self.http.request(method, path, **kwargs)
            if response.status_code != 503:
                response.raise_for_status()
                return response
            time.sleep(0.1 * (attempt + 1))
        response.raise_for_status()
        return response

    def _all(self, path: str) -> list[dict]:
        items, offset = [], 0
        while True:
            page = self._call("POST", path, json={"limit": 200, "offset": offset})
            items += page.json()
            if len(page.json()) < 200:
                return items
            offset += 200

    def deployments(self) -> dict[str, dict]:
        return {d["name"]: d for d in self._all("/deployments/filter")}

    def clear(self) -> None:
        """Delete every flow (and with it every deployment), so the next run starts cold."""
        for deployment in self._all("/deployments/filter"):
            self._call("DELETE", f"/deployments/{deployment['id']}")
        for flow in self._all("/flows/filter"):
            self._call("DELETE", f"/flows/{flow['id']}")
        left = self._call("POST", "/deployments/count", json={}).json()
        if left:
            raise SystemExit(f"bench: {left} deployments left on the server after clearing it")


def client_env(api_url: str, home: Path, bytecode: bool) -> dict[str, str]:
    """What both tools run with: this server, no prompts, no ephemeral fallback, no telemetry.

    With `bytecode`, Python reads compiled modules from bench/out/pycache (filled by `compile_code`), as it
    would from __pycache__ on a user's machine, or from the registrar image (UV_COMPILE_BYTECODE=1).
    Without it (PYTHONDONTWRITEBYTECODE is set on these machines), every run compiles Prefect from source
    again, about 1.1 s of each run.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update({
        "PREFECT_API_URL": api_url,
        "PREFECT_HOME": str(home),
        "PREFECT_CLI_PROMPT": "false",
        "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "NO_COLOR": "1",
        "COLUMNS": "160",
    })
    return env


def command(tool: str, only: str | None = None) -> list[str]:
    if tool == "prefect":
        return [str(BIN / "prefect"), "deploy", *(["--name", only] if only else ["--all"]), "--no-prompt"]
    if only:
        return [*command(tool), "--only", only]
    return [str(BIN / "flow-register"), "deploy", "-f", "flows.yaml", "--environment", ENVIRONMENT, "--output", "json"]


def timed(argv: list[str], cwd: Path, env: dict, log: Path) -> tuple[float, float]:
    """Run to exit: wall seconds, and the process's peak RSS in MB."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        began = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - began
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"bench: `{' '.join(argv)}` exited with {code} (log: {log}):\n{tail}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def own_report(log: Path) -> dict | None:
    """The summary and request counts flow-register printed with --output json."""
    try:
        report = json.loads(log.read_text())
    except ValueError:
        return None
    return {key: report[key] for key in ("summary", "requests") if key in report}


def check(server: Server, expected: set[str], before: dict[str, dict], label: str) -> tuple[dict[str, dict], int]:
    """The server holds exactly the expected deployments; returns them and how many this run wrote."""
    now = server.deployments()
    if set(now) != expected:
        missing, extra = sorted(expected - set(now)), sorted(set(now) - expected)
        raise SystemExit(f"bench: after {label} the server does not hold the expected deployments "
                         f"(missing: {missing[:5]}{'...' * (len(missing) > 5)}, unexpected: {extra[:5]})")
    written = sum(1 for name, d in now.items() if name not in before or d["updated"] != before[name]["updated"])
    return now, written


def _diff(a, b, path: str = "") -> list[str]:
    """Where two JSON values differ, as 'path: a != b' lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [line for key in sorted(set(a) | set(b), key=str)
                for line in _diff(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{path}.{key}")]
    return [] if a == b else [f"{path or '.'}: {json.dumps(a)[:120]} != {json.dumps(b)[:120]}"]


def differences(prefect: dict[str, dict], ours: dict[str, dict]) -> list[str]:
    """What differs between the deployments the two tools registered (prefect's value first)."""
    seen: dict[str, tuple[int, list[str]]] = {}
    for name, theirs in prefect.items():
        mine = ours[name]
        for key in COMPARED:
            a, b = theirs.get(key), mine.get(key)
            if key == "tags":
                a, b = sorted(a or []), sorted(b or [])
            lines = _diff(a, b, key)
            if lines:
                count, example = seen.get(key, (0, lines))
                seen[key] = (count + 1, example)
    return [f"{key} differs on {count} deployments: {'; '.join(example[:4])}{' ...' * (len(example) > 4)}"
            for key, (count, example) in seen.items()]


def create_pool(env: dict, pool_type: str, logs: Path) -> None:
    OUT.mkdir(exist_ok=True)
    timed([str(BIN / "prefect"), "work-pool", "create", POOL, "--type", pool_type, "--overwrite"],
          cwd=OUT, env=env, log=logs / "work-pool.log")


def compile_code(bytecode: bool, *projects: Path) -> None:
    """Byte-compile Prefect, flow-register and the flows into bench/out/pycache, once (later runs only check
    timestamps), and let the server started next read it too: it then starts in about 5 s instead of 17."""
    if not bytecode:
        return
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    import prefect

    site = Path(prefect.__path__[0]).parent
    subprocess.run([str(BIN / "python"), "-m", "compileall", "-q", "-j", "0", str(site), str(ROOT / "register"),
                    *map(str, projects)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def warm_up(tools: list[str], project: Path, env: dict, server: Server, logs: Path) -> None:
    """One untimed deployment per tool: the server's first requests and the page cache are not round 1's."""
    for tool in tools:
        timed(command(tool, only="bench-000"), project, env, logs / f"warm-up-{tool}.log")
    server.clear()


def table(results: Results) -> str:
    """One row per N, delay and phase: each tool's median, the ratio, requests, writes, flow-register's RSS."""
    head = (f"{'N':>4} {'delay':>6} {'phase':<12}{'prefect s':>10}{'flow-register s':>16}{'ratio':>7}"
            f"{'requests p / f-r':>18}{'written p / f-r':>17}{'f-r peak RSS MB':>17}")
    rows = [head, "-" * len(head)]
    for count in results.flows:
        for delay in results.delays_ms:
            for phase in results.phases:
                def cell(tool: str, what: str, fmt: str) -> str:
                    value = results.median(count, delay, tool, phase, what)
                    return "-" if value is None else format(value, fmt)

                theirs, ours = (results.median(count, delay, tool, phase) for tool in TOOLS)
                ratio = f"{ours / theirs:.3f}" if theirs and ours else "-"
                rows.append(f"{count:>4} {f'{delay} ms':>6} {phase:<12}{cell('prefect', 'seconds', '.2f'):>10}"
                            f"{cell('flow-register', 'seconds', '.2f'):>16}{ratio:>7}"
                            f"{cell('prefect', 'requests', '.0f') + ' / ' + cell('flow-register', 'requests', '.0f'):>18}"
                            f"{cell('prefect', 'written', '.0f') + ' / ' + cell('flow-register', 'written', '.0f'):>17}"
                            f"{cell('flow-register', 'peak_rss_mb', '.0f'):>17}")
    return "\n".join(rows)


def profile(tool: str, phase: str, cwd: Path, env: dict, out: Path, server: Server) -> dict:
    """Profile one run of `tool` (pyinstrument if installed, else cProfile) and time its imports."""
    out.mkdir(parents=True, exist_ok=True)
    argv = command(tool)
    module = ["-m", "register.cli"] if tool == "flow-register" else ["-m", "prefect"]
    # `prefect` and `flow-register` are console scripts; run their modules so the profiler sees everything.
    args = argv[1:]
    stem = f"{tool}-{phase}"
    if phase == "cold":
        server.clear()
    else:
        subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    try:
        import pyinstrument  # noqa: F401

        report = out / f"{stem}.txt"
        # Prefect is a library to pyinstrument, hidden by default; show the parts that do a deploy's work.
        shown = [f"--show=*/prefect/{part}/*" for part in ("cli", "deployments", "client/orchestration")]
        profiler = [str(BIN / "python"), "-m", "pyinstrument", "--renderer", "text", *shown,
                    "--outfile", str(report), *module, *args]
    except ImportError:
        report = out / f"{stem}.pstats"
        profiler = [str(BIN / "python"), "-m", "cProfile", "-o", str(report), *module, *args]
    seconds, _ = timed(profiler, cwd, env, out / f"{stem}.log")
    # The same run again under -X importtime (warm: nothing to write, so this is mostly import cost).
    imports = out / f"{stem}.importtime"
    if phase == "cold":
        server.clear()
    began = time.perf_counter()
    done = subprocess.run([str(BIN / "python"), "-X", "importtime", *module, *args], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    total = time.perf_counter() - began
    imports.write_text(done.stderr)
    return {"report": str(report.relative_to(ROOT)), "profiled_seconds": round(seconds, 3),
            "importtime_run_seconds": round(total, 3), "imports": top_imports(done.stderr)}


def top_imports(importtime: str, top: int = 8) -> dict[str, float]:
    """Cumulative import seconds per top-level package (what `-X importtime` lists at depth 0), largest first."""
    totals: dict[str, float] = {}
    for line in importtime.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2][1:]  # one space after the bar, then two per level of nesting
        if name.startswith(" "):
            continue
        package = name.split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(parts[1]) / 1e6
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return {name: round(seconds, 3) for name, seconds in ranked}


def numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def phases(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [p for p in chosen if p not in PHASES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"phases are {', '.join(PHASES)}; got {text!r}")
    return [p for p in PHASES if p in chosen]  # always in this order: each starts from the one before


def measure(results: Results, tools: list[str], count: int, delay: int, project: Path, flows, proxy: Proxy,
            env: dict, server: Server, logs: Path, pool_type: str) -> dict[str, dict[str, dict]]:
    """Every round of one N and one delay; returns what each tool left registered."""
    expected = {f.deployment for f in flows}
    registered: dict[str, dict[str, dict]] = {}
    for round_ in range(1, results.rounds + 1):
        for tool in tools if round_ % 2 else tools[::-1]:
            server.clear()
            before: dict[str, dict] = {}
            if "cold" not in results.phases:  # warm and one-changed start from what cold leaves, untimed
                timed(command(tool), project, env, logs / f"{count}-{delay}ms-round-{round_}-{tool}-setup.log")
                before, _ = check(server, expected, before, f"{tool} setup")
            for phase in results.phases:
                write_deployments(project, flows, pool_type, edit_one=phase == "one-changed")
                log = logs / f"{count}-{delay}ms-round-{round_}-{tool}-{phase}.log"
                proxy.reset()
                seconds, rss = timed(command(tool), project, env, log)
                seen = proxy.summary()
                timeline = proxy.timeline()
                (log.with_suffix(".timeline.json")).write_text(json.dumps(timeline))
                before, written = check(server, expected, before, f"{tool} {phase} (N {count}, {delay} ms, "
                                                                  f"round {round_})")
                reported = own_report(log) if tool == "flow-register" else None
                routes = dict(sorted(seen["counts"].items(), key=lambda kv: -kv[1]))
                served = round(sum(t for *_, t in timeline if t), 3)
                busy = sum(1 for _, _, status, _ in timeline if status in BUSY_STATUSES)
                results.runs.append(Run(count, delay, round_, tool, phase, round(seconds, 3), written,
                                        seen["requests"], round(rss, 1), str(log.relative_to(ROOT)), routes,
                                        served, busy, reported))
                print(f"  N {count:<4} {delay:>3} ms  round {round_}  {tool:<14} {phase:<12} {seconds:7.2f} s  "
                      f"wrote {written:<4} requests {seen['requests']:<5} busy {busy:<4} server {served:6.2f} s  "
                      f"peak RSS {rss:4.0f} MB", flush=True)
            write_deployments(project, flows, pool_type)
            registered[tool] = before
    return registered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=numbers, default=[50],
                        help="how many flows and deployments, comma-separated (default 50; e.g. 50,500)")
    parser.add_argument("--delays", type=numbers, default=[0],
                        help="round trips the proxy adds to each request, ms, comma-separated (default 0; e.g. 0,50,150)")
    parser.add_argument("--phases", type=phases, default=list(PHASES),
                        help=f"comma-separated, of {','.join(PHASES)} (default all)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per N and delay (default 1)")
    parser.add_argument("--flows-per-file", type=int, default=1, help="flows per generated file (default 1)")
    parser.add_argument("--pool-type", choices=["docker", "process"], default="docker")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite",
                        help="the server's database: SQLite, as `prefect server start` has by default (one write at "
                             "a time), or a throwaway PostgreSQL cluster, as a hosted server has (default sqlite)")
    parser.add_argument("--only", choices=TOOLS, help="run one tool only (to test the harness)")
    parser.add_argument("--profile", action="store_true",
                        help="after the rounds, profile flow-register deploy cold and warm (and prefect deploy cold), "
                             "without the proxy, with the largest N")
    parser.add_argument("--no-bytecode-cache", dest="bytecode", action="store_false",
                        help="run both tools with PYTHONDONTWRITEBYTECODE=1 (every run compiles Prefect from source)")
    parser.add_argument("--keep-server", action="store_true", help="leave the server running and print its URL")
    args = parser.parse_args(argv)

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work = OUT / f"run-{stamp}"
    logs = work / "logs"
    tools = [args.only] if args.only else list(TOOLS)
    results = Results(
        started=stamp,
        machine={"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                 "prefect": _version("prefect"), "commit": _git("rev-parse", "--short", "HEAD")},
        flows=args.flows, delays_ms=args.delays, phases=args.phases, flows_per_file=args.flows_per_file,
        rounds=args.rounds, pool_type=args.pool_type, bytecode_cache=args.bytecode, database=args.database,
    )
    projects = {count: (work / f"project-{count}", generate(work / f"project-{count}", count, args.flows_per_file,
                                                          args.pool_type)) for count in args.flows}
    compile_code(args.bytecode, *(project for project, _ in projects.values()))
    print(f"bench: starting a local Prefect server ({args.database}) under {work.relative_to(ROOT)}/server ...",
          flush=True)
    results.load_average["before"] = round(os.getloadavg()[0], 2)
    with contextlib.ExitStack() as services:
        url = services.enter_context(postgres.cluster()) if args.database == "postgres" else None
        local = start(work / "server", database=url)
        services.callback(local.stop)
        direct = client_env(local.api_url, work / "client-home", args.bytecode)
        server = Server(local.api_url)
        create_pool(direct, args.pool_type, logs)
        for count, (project, flows) in projects.items():
            warm_up(tools, project, direct, server, logs)
            for delay in args.delays:
                with Proxy(local.api_url, delay_ms=delay) as proxy:
                    env = client_env(proxy.api_url, work / "client-home", args.bytecode)
                    registered = measure(results, tools, count, delay, project, flows, proxy, env, server, logs,
                                         args.pool_type)
                if len(registered) == 2:
                    results.differences = differences(registered["prefect"], registered["flow-register"])
        if args.profile:
            print("bench: profiling ...", flush=True)
            project, _ = projects[max(projects)]
            for tool, phase in (("flow-register", "cold"), ("flow-register", "warm"), ("prefect", "cold")):
                if tool in tools:
                    results.profiles[f"{tool}-{phase}"] = profile(tool, phase, project, direct, work / "profile",
                                                                  server)
        if args.keep_server:
            services.pop_all()  # neither the server nor its database is stopped
            print(f"bench: server left running at {local.api_url} (stop: kill -- -{local.pid})")

    results.load_average["after"] = round(os.getloadavg()[0], 2)
    print()
    kind = "PostgreSQL 15" if args.database == "postgres" else "SQLite"
    print(f"One local Prefect {results.machine['prefect']} server ({kind}) behind a loopback proxy adding each delay "
          f"to every request; {results.machine['cpus']} CPUs, Python {results.machine['python']}, "
          f"{args.rounds} round(s) (medians), bytecode cache {'on' if args.bytecode else 'off'}, "
          f"load average {results.load_average['before']} before, {results.load_average['after']} after")
    print(table(results))
    for line in results.differences:
        print(f"note: {line}")
    for name, facts in results.profiles.items():
        print(f"profile {name}: {facts['report']} ({facts['profiled_seconds']} s profiled); "
              f"imports: {', '.join(f'{k} {v:.2f}s' for k, v in facts['imports'].items())}")
    payload = json.dumps({**asdict(results), "runs": [asdict(r) for r in results.runs]}, indent=2)
    (work / "results.json").write_text(payload)
    (OUT / "latest.json").write_text(payload)
    print(f"results: {(work / 'results.json').relative_to(ROOT)} (and bench/out/latest.json)")
    if not args.keep_server:
        shutil.rmtree(work / "server", ignore_errors=True)  # the SQLite database: tens of MB a run
    return 0


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
