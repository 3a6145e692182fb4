"""The example flows repository, copied where a test may change it."""

from __future__ import annotations

import shutil
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example_copy(tmp_path: Path, repository: str) -> Path:
    """A copy of examples/ whose image goes to `repository`; returns the copy's manifest path."""
    root = tmp_path / "flows-repo"
    shutil.copytree(EXAMPLES, root)
    path = root / "flows.yaml"
    path.write_text(path.read_text().replace("localhost:5000/sales-etl", repository))
    return path
