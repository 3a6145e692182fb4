"""`flow-register import deploy.py` reads a script someone else wrote: a pull request's deploy script, a
flow file of a repository being moved. It is data. Nothing in it is imported, executed or evaluated; a file
or a computation larger than any real deploy script is refused in seconds; nothing it names leads outside
the repository; no value of the environment the import runs in is printed; its text cannot write lines
of its own into the output (workflow commands)."""

from __future__ import annotations

import subprocess
import textwrap
import time
from pathlib import Path

import yaml

from support.registration import CLI, client_env

FLOW = "from prefect import flow\n\n\n@flow(name='etl')\ndef etl(day: str = 'x'):\n    pass\n"


def repository(tmp_path: Path, script: str, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "repo"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "etl.py").write_text(FLOW)
    for name, text in (files or {}).items():
        (root / name).write_text(textwrap.dedent(text))
    (root / "deploy.py").write_text(textwrap.dedent(script))
    return root


def run_import(root: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "import", "deploy.py", *args], cwd=root, capture_output=True, text=True,
                          timeout=timeout, env=client_env(None, root.parent / "home", **env))


def test_nothing_of_the_script_or_the_modules_it_imports_runs(tmp_path):
    marker = tmp_path / "ran"
    root = repository(tmp_path, f"""\
        import os, subprocess
        from flows.etl import etl
        from flows.settings import POOL
        open({str(marker)!r}, "w").write("script")
        os.system("touch {marker}-system")
        exec("open({str(marker)!r} + '-exec', 'w')")
        eval("__import__('os').system('touch {marker}-eval')")
        POOL2 = __import__("os").system("touch {marker}-dunder") or POOL
        etl.deploy(name="etl", work_pool_name=POOL, image=subprocess.check_output(["id"]).decode(), build=False)
        """, {"flows/settings.py": f"""\
        open({str(marker)!r} + "-module", "w").write("module")
        POOL = "ecs-prod"
        """})
    result = run_import(root, "-o", "flows.yaml")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # no marker of any kind
    manifest = yaml.safe_load((root / "flows.yaml").read_text())
    # the module's constant is read from its text; what only running could give is warned and left out
    assert manifest["environments"]["prod"]["work_pool"] == "ecs-prod"
    assert "deploy.py:9:51: warning: the image is left out: it is what .decode(...) returns, known only when the " \
           "script runs [import-unknown]" in result.stderr


def test_a_file_larger_than_any_deploy_script_is_refused_before_it_is_read(tmp_path):
    root = repository(tmp_path, "X = 1\n")
    (root / "deploy.py").write_text("X = '" + "a" * (3 * 1024 * 1024) + "'\n")
    started = time.monotonic()
    result = run_import(root, "-o", "flows.yaml")
    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert "deploy.py:1:1: error: the file is 3.0 MiB; a Python file to import may be at most 1 MiB " \
           "[import-file-size]" in result.stderr
    assert not (root / "flows.yaml").exists()


def test_a_script_of_half_a_million_nodes_deep_nesting_or_endless_work_stops_at_its_bound(tmp_path):
    deploy = "from flows.etl import etl\n"
    cases = {  # script -> what the import says (each in seconds, without a traceback)
        "nodes": ("X = [" + "1," * 400_000 + "]\n", "error: more than 200000 syntax nodes in one file"),
        "nesting": ("X = " + "(" * 5_000 + "1" + ")" * 5_000 + "\n", "error: not valid Python: too many nested"),
        "attribute chain": ("X = a" + ".b" * 100_000 + "\n", "deploy.py:1:1: error: nested too deeply to read"),
        "doubling": (deploy + "A = 'x'\n" + "A = A + A\n" * 64 + "etl.deploy(name=A, work_pool_name='p')\n",
                     "warning: the name is left out: it is longer than 100,000 characters"),
        "loops": ("L = [" + "0," * 5_000 + "]\nfor a in L:\n    for b in L:\n        X = a\n",
                  "error: more than 20000 statements to read"),
        "comprehension": ("L = [" + "0," * 5_000 + "]\nX = [[b for b in L] for a in L]\n",
                          "error: more than 20000 statements to read"),
        "recursion": (deploy + "def f(n):\n    return f(n) + f(n)\netl.deploy(name=f(1), work_pool_name='p')\n",
                      "warning: the name is left out: the script's functions call each other too deeply to follow"),
        "self-reference": (deploy + "D = {}\nD['d'] = D\netl.deploy(name='x', work_pool_name='p', job_variables=D)\n",
                           "is left out: it is nested more than 32 levels deep"),
        # functions nothing calls are read as if called once: thousands of them share the one bound, and two that
        # call each other (no caller outside) are followed no deeper than any other call
        "uncalled": (deploy + "L = [" + "0," * 5_000 + "]\n" + "".join(
            f"def f{i}():\n    for a in L:\n        etl.deploy(name='x', work_pool_name='p')\n" for i in range(3_000)),
                     "error: more than 20000 statements to read"),
        "range": (deploy + "for i in range(1_000_000_000_000):\n    etl.deploy(name=str(i), work_pool_name='p')\n",
                  "warning: a loop over what is known only when the script runs (it holds more than 10,000 items)"),
        "format width": (deploy + "etl.deploy(name=f'{1:999999999}', work_pool_name='p')\n",
                         "warning: the name is left out: a formatted value with this format spec is computed when"),
        "uncalled recursion": (deploy + "def main():\n    ping()\ndef ping():\n    pong()\n    pong()\n"
                               "def pong():\n    ping()\n    ping()\n    etl.deploy(name='x', work_pool_name='p')\n",
                               "warning: read as if `main()` were called: nothing in this file calls it"),
    }
    for name, (text, said) in cases.items():
        root = repository(tmp_path / name, "X = 1\n")
        (root / "deploy.py").write_text(text)
        started = time.monotonic()
        result = run_import(root, "-o", "flows.yaml", timeout=120)
        took = time.monotonic() - started
        assert took < 30, (name, took)
        assert "Traceback" not in result.stderr, (name, result.stderr[-2000:])
        assert said in result.stderr, (name, result.stderr[-2000:])
        if "error:" in said:
            assert result.returncode == 1 and not (root / "flows.yaml").exists(), name


def test_a_module_or_entrypoint_outside_the_repository_is_not_read(tmp_path):
    (tmp_path / "outside.py").write_text("POOL = 'read-from-outside'\n")
    (tmp_path / "outside_flow.py").write_text("from prefect import flow\n\n@flow(name='outside-name')\ndef f():\n"
                                              "    pass\n")
    root = repository(tmp_path, """\
        from prefect import flow
        from flows.etl import etl
        from flows.linked import POOL
        flow.from_source(source=".", entrypoint="../outside_flow.py:f").deploy(name="x", work_pool_name="p")
        etl.deploy(name="y", work_pool_name=POOL)
        """)
    (root / "flows" / "linked.py").symlink_to(tmp_path / "outside.py")
    result = run_import(root)
    assert "read-from-outside" not in result.stdout + result.stderr
    assert "outside-name" not in result.stdout + result.stderr
    assert "deploy.py:3:1: warning: the work pool is left out: module 'flows.linked' is outside the repository, " \
           "which the import does not read [import-unknown]" in result.stderr
    assert "entrypoint file '../outside_flow.py' is outside the repository" in result.stderr  # and validate refuses it
    assert result.returncode == 1


def test_the_environment_the_import_runs_in_is_never_printed(tmp_path):
    secret = "s3cr3t-value-of-the-deployer-0123456789"
    root = repository(tmp_path, """\
        import os
        from flows.etl import etl
        etl.deploy(name="x", work_pool_name="p", job_variables={"env": {"TOKEN": os.environ["API_TOKEN"]}},
                   parameters={"day": os.getenv("API_TOKEN", "monday")}, description=f"by {os.environ['API_TOKEN']}")
        """)
    result = run_import(root, API_TOKEN=secret)
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert manifest["deployments"][0]["job_variables"] == {"env": {"TOKEN": "${API_TOKEN}"}}


def test_text_in_the_script_cannot_write_lines_of_its_own_into_the_output(tmp_path):
    root = repository(tmp_path, """\
        from prefect.deployments import Deployment
        from prefect_aws.ecs import ECSTask
        from flows.etl import etl
        Deployment.build_from_flow(flow=etl, name="x", work_pool_name="p", apply=True,
                                   infrastructure=ECSTask.load("b\\n::error file=x::pwned\\r\\x1b[2J"))
        """)
    result = run_import(root, GITHUB_ACTIONS="true")
    assert result.returncode == 0, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    assert not any(line.startswith("::error file=x") for line in lines), lines
    assert "\x1b" not in result.stderr
    assert "ECSTask block 'b\\n::error file=x::pwned\\r\\x1b[2J' is read from the Prefect server" in result.stderr


def test_the_manifest_is_never_written_through_a_link_the_repository_holds(tmp_path):
    root = repository(tmp_path, "from flows.etl import etl\netl.deploy(name='x', work_pool_name='p')\n")
    aim = tmp_path / "elsewhere.pth"
    (root / "flows.yaml").symlink_to(aim)  # dangling: a plain write would create it where the link points
    result = run_import(root, "-o", "flows.yaml")
    assert result.returncode == 2, result.stderr
    assert "flows.yaml" in result.stderr and "give another -o" in result.stderr
    assert not aim.exists()
