"""Facts about a flow read from its source file, never by importing it.

Importing user code would run it, need its dependencies on the deploy machine, and make a deploy as
slow as the slowest import. The AST tells whether `path.py:function` exists and is a `@flow`,
its name, and its docstring; Prefect builds the parameter schema from the same source.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


class FlowNotFound(Exception):
    """The entrypoint does not name a @flow; the message says what is there instead."""

    def __init__(self, message: str, rule: str):
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class FlowFacts:
    function: str
    name: str  # the flow's name: @flow(name=...) or the function name with '_' as '-'
    description: str | None
    var_names: tuple[str, ...] = ()  # *args / **kwargs: Prefect lists them as required parameters
    takes_any_keyword: bool = False  # **kwargs: any parameter name is accepted


def _flow_aliases(tree: ast.Module, decorators: tuple[str, ...] = ("flow",)) -> tuple[set[str], set[str]]:
    """Names under which `prefect.flow` (or the other `decorators`) and the `prefect` module are visible."""
    flows, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("prefect", "prefect.flows", "prefect.tasks"):
            flows |= {a.asname or a.name for a in node.names if a.name in decorators}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "prefect"}
    return flows, modules


def _is_flow_decorator(decorator: ast.expr, flows: set[str], modules: set[str],
                       attributes: tuple[str, ...] = ("flow",)) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return target.id in flows
    return (isinstance(target, ast.Attribute) and target.attr in attributes
            and isinstance(target.value, ast.Name) and target.value.id in modules)


def _literal_kwarg(decorator: ast.expr, name: str) -> str | None:
    if isinstance(decorator, ast.Call):
        for keyword in decorator.keywords:
            if keyword.arg == name and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                return keyword.value.value
    return None


@lru_cache(maxsize=None)
def _parse(path: Path, mtime: float) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def read_flow(root: Path, entrypoint: str) -> FlowFacts:
    """The flow at `entrypoint` ('path.py:function', relative to `root`)."""
    file, _, function = entrypoint.rpartition(":")
    path = root / file
    if not path.is_file():
        where = f" (looked for {path}; entrypoints are relative to the manifest's folder)" if str(root) != "." else ""
        raise FlowNotFound(f"entrypoint file '{file}' does not exist{where}", "entrypoint-file")
    try:
        tree = _parse(path, path.stat().st_mtime)
    except SyntaxError as error:
        raise FlowNotFound(f"entrypoint file '{file}' is not valid Python: {error.msg} (line {error.lineno})",
                           "entrypoint-syntax") from None
    functions = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    flows, modules = _flow_aliases(tree)
    node = functions.get(function)
    if node is None:
        defined = [name for name, n in functions.items()
                   if any(_is_flow_decorator(d, flows, modules) for d in n.decorator_list)]
        choices = f"; flows in that file: {', '.join(defined)}" if defined else "; that file defines no @flow"
        raise FlowNotFound(f"'{file}' has no function '{function}'{choices}", "entrypoint-function")
    decorator = next((d for d in node.decorator_list if _is_flow_decorator(d, flows, modules)), None)
    if decorator is None:
        raise FlowNotFound(f"'{function}' in '{file}' is not a @flow: decorate it with @flow from prefect",
                           "entrypoint-not-flow")
    return FlowFacts(
        function=function,
        name=_literal_kwarg(decorator, "name") or function.replace("_", "-"),
        description=_literal_kwarg(decorator, "description") or ast.get_docstring(node),
        var_names=tuple(a.arg for a in (node.args.vararg, node.args.kwarg) if a is not None),
        takes_any_keyword=node.args.kwarg is not None,
    )


def parameter_schema(root: Path, entrypoint: str) -> dict:
    """The flow's parameter schema as Prefect builds it from source (OpenAPI-style JSON Schema), in the form
    `prefect deploy` sends it, so a deployment that `prefect deploy` registered plans as unchanged."""
    file, _, function = entrypoint.rpartition(":")
    return _schema_cached(str((root / file).resolve()), function, (root / file).stat().st_mtime)


@lru_cache(maxsize=None)
def _schema_cached(path: str, function: str, mtime: float) -> dict:
    """Prefect's `parameter_schema_from_entrypoint`, minus the cost of its namespace.

    To evaluate annotations and defaults, Prefect executes the file's top-level imports and definitions. That
    runs every `@flow` and `@task` decorator in the file, each building a Flow (with its own parameter
    schema and validation model) or a Task: about 5 ms a flow, for every entrypoint in the file. And the
    file's `from prefect import flow` loads `prefect.main` and sets up Prefect's logging: 0.16 s, once.
    Neither is needed to evaluate an annotation, so the namespace is built from the file without those
    decorators and without the names imported from Prefect that only they or function bodies use. The
    signature, docstring and schema are Prefect's own. (50 flows: 0.55 s -> 0.10 s.)
    """
    from prefect.utilities.callables import (
        _generate_signature_from_source,
        _get_docstring_from_source,
        generate_parameter_schema,
        parameter_docstrings,
    )

    source, namespace_source = _schema_sources(path, mtime)
    signature = _generate_signature_from_source(namespace_source, function, path)
    docstrings = parameter_docstrings(_get_docstring_from_source(source, function))
    # exclude_unset, as `prefect deploy` sends it: `definitions` only when the parameters need some.
    return generate_parameter_schema(signature, docstrings).model_dump(exclude_unset=True)


@lru_cache(maxsize=None)
def _schema_sources(path: str, mtime: float) -> tuple[str, str]:
    """The file's source, and the source Prefect builds the annotations' namespace from (see _schema_cached)."""
    source = Path(path).read_text(encoding="utf-8")
    tree = ast.parse(source, filename=path)
    names, modules = _flow_aliases(tree, decorators=("flow", "task"))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.decorator_list = [d for d in node.decorator_list
                                   if not _is_flow_decorator(d, names, modules, attributes=("flow", "task"))]
    reads = _NamespaceReads()
    reads.visit(tree)
    body = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "prefect":
            node.names = [a for a in node.names if a.name == "*" or (a.asname or a.name) in reads.names]
            if not node.names:
                continue
        body.append(node)
    tree.body = body
    return source, ast.unparse(tree)


class _NamespaceReads(ast.NodeVisitor):
    """Names read where Prefect's namespace can need them: anywhere but inside function bodies, which are
    never executed (the signatures of functions nested in them included, to be safe)."""

    def __init__(self):
        self.names: set[str] = set()
        self._in_body = False

    def visit_Name(self, node: ast.Name) -> None:
        if not self._in_body:
            self.names.add(node.id)

    def _function(self, node) -> None:
        outer = self._in_body
        self._in_body = False
        for part in (*node.decorator_list, node.args, node.returns):
            if part is not None:
                self.visit(part)
        self._in_body = True
        for statement in node.body:
            self.visit(statement)
        self._in_body = outer

    visit_FunctionDef = visit_AsyncFunctionDef = _function
