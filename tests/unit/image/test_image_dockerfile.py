"""dockerfile: auto: what the generated Dockerfile holds, for each way a project lists its requirements."""

from __future__ import annotations

from register.image.dockerfile import DEFAULT_BASE, generate, write


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


def test_written_beside_the_manifest_for_the_user_to_read(tmp_path):
    path = write(tmp_path, "FROM b\n")
    assert path == tmp_path / ".flow-register" / "Dockerfile"
    assert path.read_text() == "FROM b\n"
