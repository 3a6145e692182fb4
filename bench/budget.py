"""A cold deploy through the STAND-IN for Prefect Cloud (tests/support/cloud.py) at a plan's rate limit, with
production's flow runs beside it: `prefect deploy --all` against `flow-register deploy`.

    uv run python bench/budget.py [--flows 500] [--plans hobby,team] [--production 0.5]
                                  [--tools prefect,flow-register] [--budgets default,0]

Per plan and tool (and, for flow-register, per --budgets value: `default` is what a user gets, 150 a minute
on Cloud; 0 is no budget): every flow and deployment on the server is deleted (untimed); a new stand-in
starts at the plan's limit (Hobby 625 a minute, Team 2,500), its production load generator at
`--production` of the limit, then the tool runs once, cold, timed from process start to exit. Counted by the
stand-in: the tool's requests and its 429s; production's requests while the tool ran, and how many the
account refused (429) because of the deploy beside them. Results: a table on stdout with ratios
flow-register / prefect, JSON under bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the stand-in imports its neighbours as `support.*`

from bench import postgres  # noqa: E402
from bench.generate import generate  # noqa: E402
from bench.run import OUT, Server, _git, _version, client_env, command, compile_code, create_pool  # noqa: E402
from devtools.local_server import start  # noqa: E402
from support.cloud import PLANS, CloudStandIn  # noqa: E402


@dataclass
class Row:
    plan: str
    per_minute: int  # the account's limit
    flows: int
    tool: str  # prefect | flow-register | flow-register 0 (no budget) | flow-register N
    exit: int
    seconds: float
    requests: int  # the tool's, as the stand-in saw them (429s included)
    refused: int  # the tool's 429s
    production_sent: int  # while the tool ran
    production_refused: int
    registered: int  # deployments on the server afterwards
    log: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds * 60 if self.seconds else 0.0

    @property
    def production_lost(self) -> float:  # of production's requests while the tool ran, the share refused (429)
        return self.production_refused / self.production_sent if self.production_sent else 0.0


def run_tool(argv: list[str], cwd: Path, env: dict, log: Path, timeout: float) -> tuple[int, float]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        began = time.perf_counter()
        try:
            done = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=timeout)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = -1
        return code, time.perf_counter() - began


def one(plan: str, tool: str, budget: str | None, count: int, project: Path, share: float, upstream: str,
        server: Server, home: Path, logs: Path, bytecode: bool, timeout: float) -> Row:
    server.clear()
    label = tool if budget in (None, "default") else f"{tool} {budget}"
    with CloudStandIn(upstream, plan=plan) as cloud:
        env = client_env(cloud.api_url, home, bytecode)
        env["PREFECT_API_KEY"] = cloud.api_key
        argv = command(tool)
        if budget not in (None, "default"):
            argv += ["--requests-per-minute", budget]
        with cloud.production(share) as production:
            time.sleep(5)  # production under way before the deploy starts
            sent0, refused0 = production.sent, production.refused
            log = logs / f"{plan}-{count}-{label.replace(' ', '-')}.log"
            code, seconds = run_tool(argv, project, env, log, timeout)
            sent, refused = production.sent - sent0, production.refused - refused0
        statuses = cloud.statuses("deploy")
    row = Row(plan, PLANS[plan], count, label, code, round(seconds, 1), sum(statuses.values()), statuses.get(429, 0),
              sent, refused, len(server.deployments()), str(log.relative_to(ROOT)))
    print(f"  {plan:<6} N {count:<4} {label:<18} exit {code:<3} {seconds:7.1f} s  requests {row.requests:<5} "
          f"429s {row.refused:<5} ({row.rate:5.0f}/min)  production {sent} sent, {refused} refused "
          f"({row.production_lost:.1%})  registered {row.registered}", flush=True)
    return row


def table(rows: list[Row]) -> str:
    head = (f"{'plan':<7}{'N':>5}  {'tool':<20}{'exit':>5}{'wall s':>9}{'requests':>10}{'429s':>7}{'req/min':>9}"
            f"{'prod. sent':>12}{'prod./min':>11}{'prod. 429':>11}{'prod. lost':>12}{'time ratio':>12}{'lost ratio':>12}")
    lines = [head, "-" * len(head)]
    for row in rows:
        theirs = next((r for r in rows if (r.plan, r.flows, r.tool) == (row.plan, row.flows, "prefect")), None)
        time_ratio = f"{row.seconds / theirs.seconds:.2f}" if theirs and theirs.seconds and row.tool != "prefect" else "-"
        lost_ratio = (f"{row.production_lost / theirs.production_lost:.2f}" if theirs and theirs.production_lost
                      and row.tool != "prefect" else "-")
        lines.append(f"{row.plan:<7}{row.flows:>5}  {row.tool:<20}{row.exit:>5}{row.seconds:>9.1f}{row.requests:>10}"
                     f"{row.refused:>7}{row.rate:>9.0f}{row.production_sent:>12}"
                     f"{row.production_sent / row.seconds * 60 if row.seconds else 0:>11.0f}{row.production_refused:>11}"
                     f"{row.production_lost:>12.1%}{time_ratio:>12}{lost_ratio:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=500, help="deployments (and flows), default 500")
    parser.add_argument("--plans", default="hobby,team", help=f"comma-separated, of {', '.join(PLANS)}")
    parser.add_argument("--production", type=float, default=0.5, help="production's share of the limit (0.5)")
    parser.add_argument("--tools", default="prefect,flow-register")
    parser.add_argument("--budgets", default="default",
                        help="flow-register's --requests-per-minute values, comma-separated ('default': none given)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one tool run may take")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres",
                        help="the server's database (default postgres, as Cloud's is hosted: on SQLite, production at "
                             "Team's pace makes the server answer 503 to both tools' writes)")
    args = parser.parse_args(argv)
    plans = [p.strip() for p in args.plans.split(",") if p.strip()]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    budgets = [b.strip() for b in args.budgets.split(",") if b.strip()]

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    work = OUT / f"budget-{stamp}"
    logs = work / "logs"
    project = work / "project"
    generate(project, args.flows)
    compile_code(True, project)
    machine = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
               "prefect": _version("prefect"), "commit": _git("rev-parse", "--short", "HEAD"),
               "load_before": round(os.getloadavg()[0], 2)}
    print(f"bench: starting a local Prefect server under {work.relative_to(ROOT)}/server ...", flush=True)
    services = contextlib.ExitStack()
    url = services.enter_context(postgres.cluster()) if args.database == "postgres" else None
    local = start(work / "server", database=url)
    rows: list[Row] = []
    try:
        direct = client_env(local.api_url, work / "client-home", True)
        create_pool(direct, "docker", logs)
        server = Server(local.api_url)
        for plan in plans:
            for tool in tools:
                for budget in (budgets if tool == "flow-register" else [None]):
                    rows.append(one(plan, tool, budget, args.flows, project, args.production, local.api_url, server,
                                    work / "client-home", logs, True, args.timeout))
    finally:
        local.stop()
        services.close()
    machine["load_after"] = round(os.getloadavg()[0], 2)
    print()
    print(f"Cold deploy of {args.flows} deployments through the Cloud stand-in (a Prefect server on {args.database}), "
          f"production at {args.production:.0%} of the plan's limit beside it; {machine['cpus']} CPUs, Python {machine['python']}, Prefect "
          f"{machine['prefect']}, load average {machine['load_before']} before, {machine['load_after']} after")
    print(table(rows))
    payload = json.dumps({"started": stamp, "machine": machine, "production": args.production, "database": args.database,
                          "rows": [asdict(r) | {"rate": r.rate, "production_lost": r.production_lost} for r in rows]},
                         indent=2)
    (work / "results.json").write_text(payload)
    print(f"results: {(work / 'results.json').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
