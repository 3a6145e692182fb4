"""Settings are read once, where the program starts, and passed down: no module of the product below the
command line and the action's entry reads (or writes) this process's environment."""

from __future__ import annotations

import ast
from pathlib import Path

import register

PACKAGE = Path(register.__file__).resolve().parent
# Where the program starts: the CLI, the action's entry and launcher (which hands the runner's environment
# to the entry), and settings.py, which reads the environment for them.
BOUNDARY = {"cli.py", "settings.py", "action/entry.py", "action/launcher.py"}
READS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Each use of os.environ, os.getenv and their kind, however os or the name was imported."""
    os_names, direct = {"os"}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            direct |= {a.asname or a.name: a.name for a in node.names if a.name in READS}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in READS and isinstance(node.value, ast.Name) \
                and node.value.id in os_names:
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
        elif isinstance(node, ast.Name) and node.id in direct:
            found.append((node.lineno, f"{direct[node.id]} (from os)"))
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and any(a.name in READS for a in node.names):
            found.append((node.lineno, "from os import " + ", ".join(a.name for a in node.names)))
    return found


def test_nothing_below_the_boundary_reads_the_environment():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in BOUNDARY:
            continue
        offenders += [f"register/{relative}:{line}: {what}" for line, what in _reads(ast.parse(path.read_text()))]
    assert offenders == [], "read the settings passed down instead:\n" + "\n".join(offenders)


def test_the_walk_finds_every_way_of_reading_it():
    source = ("import os\nimport os as system\nfrom os import getenv as ge, environ\n"
              "a = os.environ['A']\nb = system.getenv('B')\nc = ge('C')\nd = environ.get('D')\n"
              "e = 'os.environ'  # text, not a read\n")
    lines = sorted(line for line, _ in _reads(ast.parse(source)))
    assert lines == [3, 4, 5, 6, 7]


def test_the_boundary_modules_exist():
    assert all((PACKAGE / name).is_file() for name in BOUNDARY)


def test_the_image_stage_prints_nothing_and_knows_nothing_of_the_report_layer():
    """Data flows one way (manifest -> resolved -> image -> plan -> apply -> report): the image stage tells
    its events to the reporter it is given; it neither prints nor imports the layer that does."""
    offenders = []
    for path in sorted((PACKAGE / "image").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"register/image/{path.relative_to(PACKAGE / 'image').as_posix()}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("register.report"):
                offenders.append(f"{where}: from {node.module} import")
            elif isinstance(node, ast.Import) and any(a.name.startswith("register.report") for a in node.names):
                offenders.append(f"{where}: import register.report")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{where}: print()")
            elif isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") \
                    and isinstance(node.value, ast.Name) and node.value.id == "sys":
                offenders.append(f"{where}: sys.{node.attr}")
    assert offenders == [], "\n".join(offenders)
