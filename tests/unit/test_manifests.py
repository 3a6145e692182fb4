"""Tests as data: every valid manifest validates; every invalid one prints exactly its .expected lines."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from register.cli import main

HERE = Path(__file__).parent / "manifests"
VALID = sorted(HERE.glob("valid-*.yaml"))
INVALID = sorted(HERE.glob("invalid-*.yaml"))


def validate(capsys, monkeypatch, name: str, *extra: str):
    monkeypatch.chdir(HERE)
    code = main(["validate", "-f", name, *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_manifest_validates(path, capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, path.name)
    assert (code, err) == (0, "")
    assert out.startswith(f"{path.name}: valid")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_reports_exactly_its_errors(path, capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, path.name)
    expected = path.with_suffix(".expected").read_text().splitlines()
    reported = [line for line in err.splitlines() if line.startswith(f"{path.name}:")]
    assert code == 1
    assert reported == expected


def test_every_problem_shows_its_line_with_a_caret(capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, "invalid-schedules.yaml")
    lines = err.splitlines()
    at = lines.index(next(l for l in lines if "invalid cron" in l))
    assert lines[at + 1] == '   10 |       - {cron: "61 * * * *"}'
    assert lines[at + 2].index("^") == lines[at + 1].index('"61')


def test_json_output_lists_problems_with_positions(capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, "invalid-names.yaml", "--output", "json")
    report = json.loads(out)
    assert code == 1 and report["valid"] is False
    assert {"file": "invalid-names.yaml", "line": 14, "col": 11, "severity": "error",
            "message": "deployment name 'nightly' is already used by deployments[0]; names must be unique",
            "rule": "duplicate-name"} in report["problems"]


def test_github_annotations_under_actions(capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, err = validate(capsys, monkeypatch, "invalid-duplicate-keys.yaml")
    assert "::error file=invalid-duplicate-keys.yaml,line=9,col=5,title=flow-register%3A duplicate-key::" \
           "duplicate key 'name' (first set on line 6); remove one of them" in err.splitlines()  # stdout may be JSON


def test_environment_must_be_declared(capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, "valid-minimal.yaml", "--environment", "prod")
    assert code == 1
    assert "--environment: error: environment 'prod' is not declared; the manifest declares 'dev' [environment]" in err


def test_exit_codes_as_a_user_sees_them(tmp_path):
    """Through the installed console script: 0 valid, 1 invalid, 2 usage."""
    def run(*args):
        return subprocess.run([Path(sys.executable).with_name("flow-register"), *args], cwd=HERE,
                              capture_output=True, text=True).returncode

    assert run("validate", "-f", "valid-minimal.yaml") == 0
    assert run("validate", "-f", "invalid-names.yaml") == 1
    assert run("validate", "--no-such-flag") == 2
    assert run("validate", "-f", "missing.yaml") == 2
    assert run("render", "-f", "valid-minimal.yaml") == 2  # --environment is required


def test_the_example_repository_is_valid(capsys, monkeypatch):
    monkeypatch.chdir(HERE.parents[2] / "examples")
    assert main(["validate"]) == 0


def test_step_summary_lists_the_problems_and_says_nothing_was_written(capsys, monkeypatch, tmp_path):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, err = validate(capsys, monkeypatch, "invalid-names.yaml")
    text = summary.read_text()
    assert code == 1
    assert text.startswith("### flow-register: 4 problems, nothing was written\n")
    assert ("| `invalid-names.yaml:14` | error | `deployment name 'nightly' is already used by deployments[0]; "
            "names must be unique` | `duplicate-name` |") in text.splitlines()


# Hostile and broken files: each ends in a problem at its place, never a traceback. Time and memory are
# printed for whoever reads the log (-s), not asserted: they move with the machine.

def load_measured(path: Path):
    from register.manifest import load_manifest

    tracemalloc.start()
    started = time.monotonic()
    try:
        manifest = load_manifest(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"\n{path.name}: {time.monotonic() - started:.3f} s, peak {peak / 1e6:.1f} MB")
    return [str(p) for p in manifest.problems]


HEADER = b"version: 1\nproject: etl\nenvironments: {dev: {work_pool: p}}\n"
DEPLOYMENTS = b"deployments: [{name: a, entrypoint: flows/etl.py:nightly}]\n"
LOL = "x-lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"x-lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))

HOSTILE = {
    "billion-laughs": (HEADER + LOL.encode() + DEPLOYMENTS,
                       "aliases expand this document to more than 20000 values; write the repeated parts once "
                       "[yaml-alias]"),
    "recursive-alias": (HEADER + b"x-loop: &loop [1, *loop]\n" + DEPLOYMENTS,
                        "4:1: error: this alias refers to a node that contains it (a recursive alias); "
                        "YAML data must be a tree [yaml-alias]"),
    "recursive-merge": (HEADER + b"x-loop: &loop {<<: *loop}\n" + DEPLOYMENTS,
                        "4:16: error: this merge refers to a mapping that contains it (a recursive alias) "
                        "[yaml-alias]"),
    "deep-nesting": (HEADER + b"x-deep: " + b"[" * 3000 + b"]" * 3000 + b"\n" + DEPLOYMENTS,
                     "4:73: error: YAML syntax: nested deeper than 64 levels [yaml-syntax]"),
    "deep-block-nesting": (HEADER + b"".join(b"  " * i + b"x-k:\n" for i in range(200)) + b"\n",
                           "67:127: error: YAML syntax: nested deeper than 64 levels [yaml-syntax]"),
    "too-large": (HEADER + b"x-pad: [" + b"1, " * 7_000_000 + b"1]\n" + DEPLOYMENTS,
                  "1:1: error: the file is 20.0 MiB; a manifest may be at most 1 MiB [file-size]"),
    "utf-16": ((HEADER + DEPLOYMENTS).decode().encode("utf-16"),
               "1:1: error: the file is encoded as UTF-16 (it starts with a UTF-16 byte order mark); save it as "
               "UTF-8 [encoding]"),
    "utf-16-without-bom": ((HEADER + DEPLOYMENTS).decode().encode("utf-16-le"),
                           "1:1: error: line 1 contains a NUL byte: the file is not UTF-8 text (UTF-16 without a "
                           "byte order mark?); save it as UTF-8 [encoding]"),
    "latin-1": (HEADER + b"x-note: caf\xe9\n" + DEPLOYMENTS,
                "4:12: error: byte 0xE9 on line 4 is not UTF-8; save the file as UTF-8 [encoding]"),
    "control-character": (HEADER + b"x-note: a\x01b\n" + DEPLOYMENTS,
                          "4:10: error: the character U+0001 is not allowed in YAML; remove it [yaml-syntax]"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=str)
def test_a_hostile_manifest_is_a_problem_at_its_place(case, tmp_path):
    content, expected = HOSTILE[case]
    path = tmp_path / "flows.yaml"
    path.write_bytes(content)
    problems = load_measured(path)
    assert [p for p in problems if p.endswith(expected)], problems


@pytest.mark.parametrize("variant", ["bom", "crlf", "bom-crlf"])
def test_utf8_with_a_byte_order_mark_or_crlf_line_ends_is_read(variant, tmp_path):
    from register.manifest import load_manifest

    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text((HERE / "flows" / "etl.py").read_text())
    content = HEADER + DEPLOYMENTS
    content = content.replace(b"\n", b"\r\n") if "crlf" in variant else content
    content = b"\xef\xbb\xbf" + content if "bom" in variant else content
    (tmp_path / "flows.yaml").write_bytes(content)
    manifest = load_manifest(tmp_path / "flows.yaml")
    assert manifest.problems == []
    assert manifest.source.where(("deployments", 0, "name")) == (4, 22)


def test_paths_must_resolve_inside_the_repository(tmp_path):
    """The repository is the git work tree holding the manifest; its own folders are fine, anything outside
    (absolute, ../ past the top, a symbolic link to a file outside) is an error at its line."""
    from register.manifest import load_manifest

    outside = tmp_path / "elsewhere.py"
    outside.write_text((HERE / "flows" / "etl.py").read_text())
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "shared").mkdir()
    (repo / "shared" / "etl.py").write_text(outside.read_text())
    (repo / "sub" / "flows").mkdir(parents=True)
    (repo / "sub" / "flows" / "link.py").symlink_to(outside)
    (repo / "sub" / "flows.yaml").write_text(f"""\
version: 1
project: etl
image: {{repository: r/etl, dockerfile: ../../Dockerfile, context: {tmp_path}}}
defaults: {{work_pool: pool}}
environments: {{dev: {{}}}}
deployments:
  - {{name: a, entrypoint: "{outside}:nightly"}}
  - {{name: b, entrypoint: ../../elsewhere.py:nightly}}
  - {{name: c, entrypoint: flows/link.py:nightly}}
  - {{name: d, entrypoint: ../shared/etl.py:nightly, parameters: {{region: eu}}}}
""")
    manifest = load_manifest(repo / "sub" / "flows.yaml")
    tail = "; the image and a clone hold only the repository's files: move it inside the repository [path-outside]"
    assert [str(p).split(": ", 1)[1] for p in manifest.problems] == [
        "error: Dockerfile '../../Dockerfile' is outside the repository" + tail,
        f"error: build context '{tmp_path}' is an absolute path outside the repository" + tail,
        f"error: entrypoint file '{outside}' is an absolute path outside the repository" + tail,
        "error: entrypoint file '../../elsewhere.py' is outside the repository" + tail,
        "error: entrypoint file 'flows/link.py' leads outside the repository through a symbolic link" + tail,
    ]
    assert [p.line for p in manifest.problems] == [3, 3, 7, 8, 9]


def test_a_tag_before_a_closing_brace_says_to_add_a_space(tmp_path):
    path = tmp_path / "flows.yaml"
    path.write_text("version: 1\nx-p: {region: !null}\n")
    assert load_measured(path) == [f"{path}:2:20: error: YAML syntax: while scanning a tag: expected ' ', but found "
                                   "'}' (in { } and [ ], a tag such as !null needs a space after it: {key: !null }) "
                                   "[yaml-syntax]"]


def test_a_variable_only_another_environment_uses_is_a_warning(capsys, monkeypatch):
    """dev's job sets dev's variables: prod's pool, unset, does not stop `validate --environment dev`."""
    monkeypatch.setenv("FLOW_REGISTER_TEST_POOL", "dev-pool")
    monkeypatch.setenv("FLOW_REGISTER_TEST_TEAM", "sales")
    code, out, err = validate(capsys, monkeypatch, "invalid-unset-variables.yaml", "--environment", "dev")
    assert code == 0, err
    assert [line for line in err.splitlines() if line.startswith("invalid-unset-variables.yaml:")] == [
        "invalid-unset-variables.yaml:5:11: warning: environment variable 'FLOW_REGISTER_TEST_NOWHERE' is not set, but "
        "no environment uses it (on line 5) [environment-variable]",
        "invalid-unset-variables.yaml:12:16: warning: environment variable 'FLOW_REGISTER_TEST_PROD_POOL' is not set "
        "and has no default, but only 'prod' uses it (on lines 12 and 19), not 'dev': set it when checking 'prod', "
        "or give a default: ${FLOW_REGISTER_TEST_PROD_POOL:-value} [environment-variable]"]
    code, out, err = validate(capsys, monkeypatch, "invalid-unset-variables.yaml", "--environment", "prod")
    assert code == 1
    assert "12:16: error: environment variable 'FLOW_REGISTER_TEST_PROD_POOL' is not set" in err
