"""Flow source is data: a pull request's flow files, the modules they name and every other file of the
checkout are read, never imported or run, and reading them is bounded.

Each attack is what a hostile pull request can write. Every file it controls that would run leaves a marker
(with the process's environment in it, as a secret read from /proc/self/environ) in a folder outside the
checkout; the marker must never appear and no secret may reach the output. Commands are run as a user and
the action run them: `validate` and `render` (offline), `plan` against a real Prefect server, and the
action's entry (a dry run) against a real server, with a manifest that has a mistake, and with an
unreachable server.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.manifests import HOSTILE
from support.registration import CLI, client_env

ROOT = Path(__file__).resolve().parents[2]
SECRET = "pnu_flow-source-secret-4711"

MISTAKE = HOSTILE + "  - {name: broken, entrypoint: flows/flow.py:hostile, concurency_limit: 1}\n"

# What a file of the pull request does when Python runs it: leave a marker holding the secrets it can read.
PAYLOAD = """\
import pathlib
pathlib.Path({marks!r}, {name!r}).write_bytes(open("/proc/self/environ", "rb").read())
"""

# name -> (the flow's parameters, the imports above them, the line of the parameter to warn about)
ATTACKS = {
    # unittest.__main__ runs test discovery in the working directory: the pull request's test_x.py
    "unittest-main": ("import unittest", "x: unittest.__main__.X = None"),
    # `this` prints the Zen of Python when imported; `antigravity` opens a browser (runs $BROWSER)
    "this": ("import this", "x: this.Anything = None"),
    "antigravity": ("import antigravity", "x: antigravity.Anything = None"),
    "string-annotation": ("import antigravity", 'x: "antigravity.Anything" = None'),
    "forward-ref-in-generic": ("import antigravity\nfrom typing import Optional", 'x: Optional["antigravity.A"] = None'),
    "annotated-metadata": ("import antigravity\nfrom typing import Annotated", "x: Annotated[int, antigravity.A] = 1"),
    "default-module-attribute": ("import this", "x: str = this.s"),
    "from-import": ("from antigravity import geohash", "x: int = geohash"),
    "submodule-import": ("import unittest.__main__ as runner", "x: runner.X = None"),
    # a package of the checkout outside the manifest's folder, importable through the job's PYTHONPATH
    "repository-package": ("import evilpkg", "x: evilpkg.X = None"),
    # a module of the checkout next to the flow, named like a module flow-register may import
    "shadowed-type-module": ("from decimal import Decimal", 'x: Decimal = Decimal("1.5")'),
}


def hostile_repository(tmp_path: Path, imports: str, parameter: str, manifest: str = HOSTILE) -> tuple[Path, Path]:
    """A checkout with the manifest in pipelines/, the hostile flow, a test_x.py discovery would import, a
    package under lib/ and a decimal.py next to the flow; the marker folder outside it."""
    repo, marks = tmp_path / "repo", tmp_path / "marks"
    root = repo / "pipelines"
    (root / "flows").mkdir(parents=True)
    marks.mkdir()
    (root / "flows.yaml").write_text(manifest)
    (root / "flows" / "flow.py").write_text(
        f"{imports}\nfrom prefect import flow\n\n\n@flow\ndef hostile({parameter}):\n    pass\n")
    for path, name in ((root / "test_x.py", "test_x"), (root / "flows" / "test_flow.py", "test_flow"),
                       (repo / "lib" / "evilpkg" / "__init__.py", "evilpkg"),
                       (root / "flows" / "decimal.py", "decimal")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PAYLOAD.format(marks=str(marks), name=name) + "X = int\nDecimal = float\n")
    browser = tmp_path / "browser.py"
    browser.write_text(PAYLOAD.format(marks=str(marks), name="browser"))
    return root, marks


def job_environment(tmp_path: Path, api_url: str | None) -> dict[str, str]:
    """A CI job's: a secret in the environment, a browser, the checkout's lib/ on PYTHONPATH (a monorepo)."""
    env = client_env(api_url, tmp_path / "home", FLOW_SOURCE_SECRET=SECRET,
                     BROWSER=f"{sys.executable} {tmp_path / 'browser.py'} %s",
                     PYTHONPATH=str(tmp_path / "repo" / "lib"))
    return env


def assert_nothing_ran(marks: Path, done: subprocess.CompletedProcess) -> None:
    out = done.stdout + done.stderr
    assert sorted(p.name for p in marks.iterdir()) == [], out
    assert "Beautiful is better than ugly" not in out  # `this` was not imported
    assert "Traceback" not in out and "Ran 0 tests" not in out and "usage: " not in out, out
    assert SECRET not in out


def run(args: list[str], cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("command", [["validate"], ["render", "--environment", "dev"]], ids=["validate", "render"])
def test_flow_source_names_no_module_that_is_imported(tmp_path, attack, command):
    imports, parameter = ATTACKS[attack]
    root, marks = hostile_repository(tmp_path, imports, parameter)
    done = run([CLI, *command], root, job_environment(tmp_path, None))
    assert_nothing_ran(marks, done)
    assert done.returncode == 0, done.stdout + done.stderr
    line = 3 + imports.count("\n") + 3
    if attack != "shadowed-type-module":  # read as the project's file: its `Decimal = float` is known
        assert f"flows/flow.py:{line}:" in done.stderr and "parameter 'x'" in done.stderr, done.stderr


@pytest.mark.integration
@pytest.mark.parametrize("attack", ["unittest-main", "antigravity", "repository-package"])
def test_plan_against_a_server_imports_nothing(tmp_path, prefect_server, attack):
    root, marks = hostile_repository(tmp_path, *ATTACKS[attack])
    done = run([CLI, "plan", "-e", "dev"], root, job_environment(tmp_path, prefect_server.api_url))
    assert_nothing_ran(marks, done)
    # the pool does not exist on this server: the plan says so, after reading the flow
    assert done.returncode == 1 and "hostile-pool" in done.stdout + done.stderr, done.stdout + done.stderr


def action_environment(tmp_path: Path, root: Path, api_url: str) -> dict[str, str]:
    """The action's entry as a pull request's plan job runs it: inputs and secrets as INPUT_* variables."""
    return {"PATH": os.environ["PATH"], "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(root),
            "INPUT_ENVIRONMENT": "dev", "INPUT_DRY_RUN": "true", "INPUT_PREFECT_API_URL": api_url,
            "INPUT_PREFECT_API_KEY": SECRET, "INPUT_GITHUB_TOKEN": SECRET + "-github",
            "PREFECT_HOME": str(tmp_path / "home"), "HOME": str(tmp_path / "home"),
            "BROWSER": f"{sys.executable} {tmp_path / 'browser.py'} %s"}


@pytest.mark.integration
@pytest.mark.parametrize("case", ["server", "mistake", "unreachable"])
def test_the_actions_dry_run_imports_nothing(tmp_path, prefect_server, case):
    """The issue's attack: discovery of the pull request's test_x.py, run in the plan job, exited 0."""
    manifest = MISTAKE if case == "mistake" else HOSTILE
    root, marks = hostile_repository(tmp_path, *ATTACKS["unittest-main"], manifest=manifest)
    url = "http://127.0.0.1:9/api" if case == "unreachable" else prefect_server.api_url
    done = subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd=root,
                          env=action_environment(tmp_path, root, url), capture_output=True, text=True, timeout=180)
    assert sorted(p.name for p in marks.iterdir()) == [], done.stdout
    assert "Ran 0 tests" not in done.stdout
    shown = [line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("::add-mask::")]
    assert not [line for line in shown if SECRET in line]
    if case == "unreachable":
        assert done.returncode == 4 and "cannot reach the Prefect server" in done.stdout, done.stdout
        return
    assert done.returncode == 1, done.stdout  # the pool is missing, or the manifest is wrong
    assert "flows/flow.py:6:" in done.stdout and "parameter 'x'" in done.stdout, done.stdout
    if case == "mistake":
        assert "concurency_limit" in done.stdout


@pytest.mark.parametrize("default", [
    'dict(os.environ)["FLOW_SOURCE_SECRET"]',
    'str(os.environ)',
    'os.environ.get("FLOW_SOURCE_SECRET")',
    'pathlib.Path("/proc/self/environ").read_text()',
    'typing.sys.modules["os"].environ["FLOW_SOURCE_SECRET"]',
    '"{0.__class__}".format(1)',
], ids=["environ-copy", "environ-text", "environ-get", "proc-environ", "through-typing", "format-attribute"])
def test_a_default_reads_no_secret(tmp_path, default):
    root, marks = hostile_repository(tmp_path, "import os\nimport pathlib\nimport typing", f"x: str = {default}")
    done = run([CLI, "render", "--environment", "dev"], root, job_environment(tmp_path, None))
    assert_nothing_ran(marks, done)
    assert done.returncode == 0 and "flows/flow.py:8:" in done.stderr, done.stderr


# --- bounded work: what a default or a constant may cost ---

LIMITED = 2 * 1024 ** 3  # address space of the command under test: what main needed was 3 to 6 GB


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (LIMITED, LIMITED))


# Runs the command as its only child, then writes the child's peak memory (MiB) and CPU seconds.
MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[2:], preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit})))
used = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{{used.ru_maxrss // 1024}} {{used.ru_utime + used.ru_stime}}")
sys.exit(done.returncode)
"""


def measured(args: list[str], root: Path, env: dict, tmp_path: Path) -> tuple[subprocess.CompletedProcess, int, float]:
    """The command's result, peak memory in MiB and CPU seconds (a minute at most)."""
    report = tmp_path / "measured"
    done = subprocess.run([sys.executable, "-c", MEASURE.format(limit=LIMITED), str(report), *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=60)
    memory, cpu = report.read_text().split()
    return done, int(memory), float(cpu)


BOUNDED = {
    "huge-power": "(10**10000)**3000",  # 45 s of CPU
    "shared-rows": "[[0]*100000]*100000",  # 5.8 GB as JSON
    "f-string-width": 'f"{1:>1000000000}"',  # 3 GB
    "string-repeat": "'x' * 10**9",
    "power-of-power": "2 ** 10**8",
    "format-width": "format(1, '>1000000000')",
    "format-method": "'{:>{}}'.format(1, 10**9)",
    "percent-width": "'%*d' % (10**9, 1)",
    "nested-comprehension": "[x for x in range(100000) for y in range(100000) if x < 0]",
    "comprehension-of-rows": "[[i] * 100000 for i in range(100000)]",
    "range-list": "list(range(10**12))",
    "sum-range": "sum(range(10**15))",
    "round-digits": "round(1, -10**9)",
    "bytes-count": "bytes(10**9)",
    "replace-growth": "('a' * 100000).replace('a', 'a' * 100000)",
    "join-growth": "('x' * 100000).join(['a'] * 100000)",
    "center": "'x'.center(10**9)",
    "shift": "1 << 10**10",
    "decimal-exponent": "int(decimal.Decimal('1e100000000'))",
    "deep-expression": "1" + "+1" * 500,
    "ipv6-network": "list(ipaddress.ip_network('::/0'))",
}


@pytest.mark.parametrize("default", BOUNDED.values(), ids=BOUNDED.keys())
def test_a_default_too_costly_to_evaluate_is_a_warning(tmp_path, default):
    root, marks = hostile_repository(tmp_path, "import decimal\nimport ipaddress", f"x = {default}")
    done, memory, cpu = measured([CLI, "render", "--environment", "dev"], root, job_environment(tmp_path, None),
                                 tmp_path)
    assert memory < 400 and cpu < 20, (memory, cpu)  # flow-register alone: about 100 MiB and 2 s
    assert done.returncode == 0, done.stderr[-2000:]
    assert "flows/flow.py:7:" in done.stderr and "default of parameter 'x'" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_constants_chained_into_deep_values_are_bounded(tmp_path):
    """Each constant nests the previous one: evaluated one by one (each default in turn) they would nest
    thousands of lists deep, which pydantic would recurse into."""
    chain = "A0 = [0]\n" + "".join(f"A{i} = [[[[[[[[[[A{i - 1}]]]]]]]]]]\n" for i in range(1, 300))
    parameters = ", ".join(f"p{i}=A{i}" for i in range(300))
    root, marks = hostile_repository(tmp_path, chain, parameters)
    done = subprocess.run([CLI, "render", "--environment", "dev"], cwd=root, env=job_environment(tmp_path, None),
                          capture_output=True, text=True, timeout=60, preexec_fn=limited)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "nests containers more than 100 deep" in done.stderr


@pytest.mark.parametrize("content, message", [
    ("X = [" + "0, " * 17_000_000 + "]\n", "entrypoint file 'flows/flow.py' is not read: it is 48.6 MiB"),
    ("X = " + "-" * 200_000 + "1\n", "entrypoint file 'flows/flow.py' is not valid Python: it is nested too deeply for Python's parser"),
], ids=["50-MB-file", "parser-nesting"])
def test_a_flow_file_too_large_or_deep_to_parse_is_an_error_at_its_entrypoint(tmp_path, content, message):
    root, marks = hostile_repository(tmp_path, "", "x: int = 1")
    flow = root / "flows" / "flow.py"
    flow.write_text(flow.read_text() + content)
    done = subprocess.run([CLI, "validate"], cwd=root, env=job_environment(tmp_path, None),
                          capture_output=True, text=True, timeout=60, preexec_fn=limited)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert f"flows.yaml:6:33: error: {message}" in done.stdout + done.stderr, done.stdout + done.stderr


def test_a_project_module_too_large_to_read_is_a_warning(tmp_path):
    root, marks = hostile_repository(tmp_path, "from big import LIMIT", "x: int = LIMIT")
    (root / "flows" / "big.py").write_text("LIMIT = 1\n" + "# padding\n" * 500_000)
    done = run([CLI, "render", "--environment", "dev"], root, job_environment(tmp_path, None))
    assert done.returncode == 0, done.stderr
    assert "flows/flow.py:6:" in done.stderr and "whose file big.py cannot be read: it is 4.8 MiB, and flow-register reads Python files up to 1 MiB" in done.stderr


def test_a_huge_docstring_is_not_parsed_for_descriptions(tmp_path):
    root, marks = hostile_repository(tmp_path, "", "x: int = 1")
    flow = root / "flows" / "flow.py"
    arguments = "".join(f"        p{i}: described\n" for i in range(10_000))
    flow.write_text(flow.read_text().replace("    pass\n", f'    """Load.\n\n    Args:\n{arguments}    """\n'))
    done = subprocess.run([CLI, "render", "--environment", "dev"], cwd=root, env=job_environment(tmp_path, None),
                          capture_output=True, text=True, timeout=60, preexec_fn=limited)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("flows/flow.py:6:1: warning: the docstring of 'hostile' is longer than 100,000 characters: parameter "
            "descriptions are not read from it [parameter-description-unread]") in done.stderr


def test_the_flows_of_one_file_share_its_time(tmp_path):
    """Each flow's default stays under the steps one flow may take (a few seconds); forty of them would
    take minutes, and the file's time ends them."""
    from register.flows import flow_schema
    from register.flows.values import MAX_SECONDS

    slow = "[x for x in range(400) for y in range(400) if x < 0]"
    flows = "".join(f"@flow\ndef f{i}(x={slow}):\n    pass\n\n\n" for i in range(40))
    (tmp_path / "flow.py").write_text(f"from prefect import flow\n\n\n{flows}")
    started = time.monotonic()
    found = [flow_schema(tmp_path, f"flow.py:f{i}") for i in range(40)]
    assert time.monotonic() - started < MAX_SECONDS + 10
    assert found[0].schema["properties"]["x"]["default"] == [] and not found[0].warnings
    assert f"takes more than {MAX_SECONDS:.0f} s" in found[-1].warnings[0].message


def test_a_literal_default_of_a_megabyte_is_read_in_bounded_time(tmp_path):
    root, marks = hostile_repository(tmp_path, "", "x=[" + "0, " * 340_000 + "]")
    done, memory, cpu = measured([CLI, "render", "--environment", "dev"], root, job_environment(tmp_path, None),
                                 tmp_path)
    assert done.returncode == 0 and cpu < 20 and memory < 600, (done.stderr[-2000:], memory, cpu)
    assert ("flows/flow.py:6:15: warning: the default of parameter 'x' ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...]) cannot "
            "be known without running code: it has more than 100,000 items") in done.stderr


@pytest.mark.parametrize("parameter", ["_private: int = 1", "__config__=1"])
def test_a_parameter_pydantic_refuses_is_a_warning_not_a_traceback(tmp_path, parameter):
    root, marks = hostile_repository(tmp_path, "", f"{parameter}, kept: int = 2")
    done = run([CLI, "render", "--environment", "dev"], root, job_environment(tmp_path, None))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    name = parameter.split(":")[0].split("=")[0]
    assert f"flows/flow.py:6:13: warning: parameter '{name}' cannot be described" in done.stderr
    assert '"kept"' in done.stdout
