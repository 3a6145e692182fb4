"""The project's Python files as parsed modules: what each top-level name is bound to, and where an
import leads, found by reading files, never by importing them.

An import names either a module of the project (a file under the flow's folder or the project's root,
where `prefect deploy` finds it on sys.path), one of TYPE_MODULES (which may be imported), or anything
else, which is never imported: some modules run code when imported (`unittest.__main__` starts test
discovery in the working directory and imports the pull request's own `test_*.py`), and which do is not
for flow-register to guess.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path


# The only modules flow-register imports because flow source names them: modules that define types and
# value constructors, whose import runs no code beyond defining them, and that are imported by
# flow-register itself (through pydantic) or are standard-library leaves. Each is exact: a submodule is
# allowed only when listed (`import a.b` runs a/__init__.py and a/b.py).
TYPE_MODULES = frozenset({
    "typing", "typing_extensions",  # generics, Optional, Literal, Annotated: what annotations are made of
    "collections", "collections.abc",  # OrderedDict, deque, Counter; Sequence, Mapping (pydantic describes them)
    "datetime", "decimal", "uuid", "ipaddress", "zoneinfo",  # value types pydantic describes; no import-time work
    "pathlib",  # Path types; only constructors are called, never a method that touches the file system
    "enum",  # Enum, IntEnum, StrEnum, auto, unique: the project's enums are rebuilt from them
    "dataclasses",  # @dataclass and field() for the project's dataclasses
    "annotated_types",  # Gt, Len...: constraints in Annotated[...] metadata (a dependency of pydantic)
    # BaseModel, Field, constrained and network types; the top-level module's lazy names import only
    # pydantic's own modules. Not pydantic.v1 (not described) and not the modules that take functions.
    "pydantic", "pydantic.fields", "pydantic.types", "pydantic.networks", "pydantic.config", "pydantic.main",
    "pydantic.dataclasses", "pydantic.json_schema",
})
# Facts about the interpreter that flow source tests at the top level (`if sys.version_info >= (3, 8)`);
# nothing else of these modules is read (sys.modules, sys.argv).
FACTS = {"sys": frozenset({"version_info", "platform", "maxsize", "byteorder", "hexversion"})}
# Not prefect: importing it reads settings from the working directory (.env, prefect.toml), which a pull
# request writes, and runs far more than type definitions; a Prefect block as a parameter type is
# registered as accepting any value, with a warning.
NOT_IMPORTED = "which flow-register does not import (it imports only modules that define types: typing, pydantic...)"
MAX_SOURCE = 1024 * 1024  # bytes of one Python file read: parsing costs about 4 s per MiB here


class SourceTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Binding:
    """One way a top-level name gets its value: `kind` is 'import' (a module), 'from' (a name in a module),
    'value' (an expression), 'class' or 'function'."""

    kind: str
    node: ast.AST
    module: str = ""  # 'import' and 'from': the absolute module name
    name: str = ""  # 'from': the name imported from it
    value: ast.expr | None = None  # 'value'
    # `if` branches: (test, the truth it needs); a binding whose test cannot be evaluated is not known
    conditions: tuple[tuple[ast.expr, bool], ...] = ()
    fallback: int = 0  # bound in an `except` branch starting at this line: used when the `try` fails here


@dataclass
class Module:
    """A parsed file of the project."""

    name: str  # dotted, as imported ('pipelines.x.constants'); the flow file: its stem
    path: Path
    package: str  # what relative imports are relative to
    source: bytes
    tree: ast.Module
    bindings: dict[str, list[Binding]] = field(default_factory=dict)  # alternatives, the likeliest first
    stars: list[str] = field(default_factory=list)  # modules of `from x import *`, the last first


@dataclass(frozen=True)
class External:
    """A module that is not one of the project's files; `reason` says why it cannot be imported here."""

    name: str
    reason: str | None = None


@lru_cache(maxsize=None)
def read_source(path: Path, mtime_ns: int, size: int) -> tuple[bytes, ast.Module]:
    """The file's bytes and tree. Raises SyntaxError, or ValueError for a file too large, too deeply
    nested or not text: the parser's own limits end in RecursionError or MemoryError."""
    if size > MAX_SOURCE:
        raise SourceTooLarge(f"it is {size / 1024 / 1024:.1f} MiB, and flow-register reads Python files up to "
                             f"{MAX_SOURCE // 1024 // 1024} MiB")
    with path.open("rb") as file:
        source = file.read(MAX_SOURCE + 1)
    if len(source) > MAX_SOURCE:
        raise SourceTooLarge(f"it is larger than {MAX_SOURCE // 1024 // 1024} MiB, the most flow-register reads")
    try:
        return source, ast.parse(source, filename=str(path))
    except (RecursionError, MemoryError):
        raise ValueError("it is nested too deeply for Python's parser") from None


class Project:
    """The modules a flow's schema may read, found from the flow's folder and the project's root (the
    folders `prefect deploy` puts on sys.path when it loads an entrypoint) and the root's src/."""

    def __init__(self, root: Path, flow_file: Path):
        self.root = root.resolve()
        # src/: a project laid out for packaging; an installed copy of it is still the user's code
        self.search = list(dict.fromkeys([flow_file.resolve().parent, self.root, self.root / "src"]))
        self._modules: dict[str, Module | External] = {}
        self.read: dict[Path, bytes] = {}  # every project file read, for the schema's fingerprint

    def file(self, path: Path, name: str, package: str) -> Module:
        path = path.resolve()
        stat = path.stat()
        source, tree = read_source(path, stat.st_mtime_ns, stat.st_size)
        self.read[path] = source
        module = Module(name, path, package, source, tree)
        _bind(module, tree.body)
        return module

    def module(self, name: str) -> Module | External:
        """The module imported as `name` (absolute, dotted)."""
        if name not in self._modules:
            self._modules[name] = self._find(name)
        found = self._modules[name]
        if isinstance(found, Module):
            self.read[found.path] = found.source
        return found

    def _find(self, name: str) -> Module | External:
        parts = name.split(".")
        for folder in self.search:
            base = folder.joinpath(*parts)
            for path, package in ((base / "__init__.py", name), (base.with_suffix(".py"), name.rpartition(".")[0])):
                if path.is_file() and path.resolve().is_relative_to(self.root):
                    try:
                        return self.file(path, name, package)
                    except (SyntaxError, ValueError, OSError) as error:
                        return External(name, f"whose file {path.relative_to(folder)} cannot be read: {error}")
        # Nothing is looked up on sys.path (a find_spec of a dotted name imports its parent packages).
        return External(name) if name in TYPE_MODULES or name in FACTS else External(name, NOT_IMPORTED)


def _bind(module: Module, body: list[ast.stmt]) -> None:
    """Top-level bindings in execution order; a later statement replaces an earlier one, while the branches
    of `if` (each with its condition) and `try` (the `except` ones as fallbacks) are alternatives."""
    for node in body:
        found: dict[str, list[Binding]] = {}
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    found[alias.asname] = [Binding("import", node, alias.name)]
                else:  # `import a.b` binds `a`
                    found[alias.name.split(".")[0]] = [Binding("import", node, alias.name.split(".")[0])]
        elif isinstance(node, ast.ImportFrom):
            absolute = _absolute(module, node)
            for alias in node.names:
                if alias.name == "*":
                    module.stars.insert(0, absolute)
                else:
                    found[alias.asname or alias.name] = [Binding("from", node, absolute, alias.name)]
        elif isinstance(node, ast.ClassDef):
            found[node.name] = [Binding("class", node)]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found[node.name] = [Binding("function", node)]
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                _assign(found, node, target, node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            _assign(found, node, node.target, node.value)
        elif isinstance(node, ast.If) and not _is_main_block(node):
            for branch, truth in ((node.body, True), (node.orelse, False)):
                for name, alternatives in _branch(module, branch).items():
                    found.setdefault(name, []).extend(
                        replace(b, conditions=((node.test, truth), *b.conditions)) for b in alternatives)
        elif isinstance(node, ast.Try):
            for name, alternatives in _branch(module, node.body + node.orelse).items():
                found.setdefault(name, []).extend(alternatives)
            for handler in node.handlers:
                for name, alternatives in _branch(module, handler.body).items():
                    found.setdefault(name, []).extend(replace(b, fallback=handler.lineno) for b in alternatives)
        for name, alternatives in found.items():
            # a branch that does not run leaves the name as it was
            earlier = module.bindings.get(name, []) if isinstance(node, (ast.If, ast.Try)) else []
            module.bindings[name] = alternatives + earlier


def _branch(module: Module, body: list[ast.stmt]) -> dict[str, list[Binding]]:
    inner = Module(module.name, module.path, module.package, module.source, module.tree, stars=module.stars)
    _bind(inner, body)
    return inner.bindings


def _assign(found: dict, node: ast.stmt, target: ast.expr, value: ast.expr) -> None:
    if isinstance(target, ast.Name):
        found[target.id] = [Binding("value", node, value=value)]
    elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) \
            and len(target.elts) == len(value.elts):
        for t, v in zip(target.elts, value.elts):
            _assign(found, node, t, v)


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.package.split(".") if module.package else []
    base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join(base + ([node.module] if node.module else []))


def _is_main_block(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def short(node: ast.AST, length: int = 60) -> str:
    """An expression as a message shows it: its first characters, unparsed from a preview of it (the first
    items of each list, a few levels deep), so a literal of megabytes costs as little as a small one."""
    try:
        text = ast.unparse(_preview(node, 0))
    except Exception:  # noqa: BLE001 - a preview unparse cannot render: the message goes on without it
        return "..."
    return text if len(text) <= length else text[:length - 3] + "..."


def _preview(node: ast.AST, depth: int) -> ast.AST:
    if depth > 8:
        return ast.Constant(value=...) if isinstance(node, ast.expr) else node
    copied = copy.copy(node)
    for name, value in ast.iter_fields(node):
        if isinstance(value, list):
            items = [_preview(v, depth + 1) if isinstance(v, ast.AST) else v for v in value[:10]]
            if len(value) > 10 and name in ("elts", "args"):
                items.append(ast.Constant(value=...))
            setattr(copied, name, items)
        elif isinstance(value, ast.AST):
            setattr(copied, name, _preview(value, depth + 1))
        elif isinstance(value, str) and len(value) > 200:
            setattr(copied, name, value[:200])
    return copied


def imported_files(repository: Path, flow_file: Path, folders: list[Path]) -> set[Path]:
    """The flow file and every file of the repository it imports, directly or through other project files,
    anywhere in them (inside functions too): what a run of the flow executes of the repository. `folders`:
    where imports are looked up, after the flow's own folder (the manifest's, then the repository's top).
    Read with the same lookup as the schema's modules, never imported."""
    project = Project(repository, flow_file)
    project.search = list(dict.fromkeys([flow_file.resolve().parent, *(f.resolve() for f in folders)]))
    start = project.file(flow_file, flow_file.stem, "")
    found = {start.path}
    todo = [start]
    while todo:
        module = todo.pop()
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, node)
                names = [base] + [f"{base}.{alias.name}" for alias in node.names if alias.name != "*"]
            else:
                continue
            for name in names:
                parts = [p for p in name.split(".") if p]
                for end in range(1, len(parts) + 1):  # `import a.b` runs a/__init__.py too
                    imported = project.module(".".join(parts[:end]))
                    if isinstance(imported, Module) and imported.path not in found:
                        found.add(imported.path)
                        todo.append(imported)
    return found
