"""Facts about a flow read from its source file, never by importing or executing it.

Running user code would run it on the deploy machine (at every stage: validate, plan, deploy), need its
dependencies there, and make a deploy as slow as the slowest import. The AST tells whether
`path.py:function` exists and is a `@flow`, its name and its docstring; the parameter schema is built from
the signature's annotations and defaults, interpreted from the AST (values.py) with the project's own
modules read, never imported, and described by pydantic as Prefect describes them (schema.py).
"""

from __future__ import annotations

import ast
import hashlib
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from register.flows.source import Module, Project, SourceTooLarge, read_source
from register.problems import Problem

# Part of every fingerprint: change it when the schema made from the same source changes.
SCHEMA_ALGORITHM = "flow-register-schema-2"  # 2: pure expressions evaluated, TYPE_MODULES only
MAX_DOCSTRING = 100_000


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


def _literal_kwarg(decorator: ast.expr | None, name: str) -> str | None:
    if isinstance(decorator, ast.Call):
        for keyword in decorator.keywords:
            if keyword.arg == name and isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                return keyword.value.value
    return None


def read_flow(root: Path, entrypoint: str) -> FlowFacts:
    """The flow at `entrypoint` ('path.py:function', relative to `root`)."""
    file, _, function = entrypoint.rpartition(":")
    path = root / file
    if not path.is_file():
        where = f" (looked for {path}; entrypoints are relative to the manifest's folder)" if str(root) != "." else ""
        raise FlowNotFound(f"entrypoint file '{file}' does not exist{where}", "entrypoint-file")
    try:
        stat = path.stat()
        tree = read_source(path, stat.st_mtime_ns, stat.st_size)[1]
    except SyntaxError as error:
        raise FlowNotFound(f"entrypoint file '{file}' is not valid Python: {error.msg} (line {error.lineno})",
                           "entrypoint-syntax") from None
    except SourceTooLarge as error:
        raise FlowNotFound(f"entrypoint file '{file}' is not read: {error}", "entrypoint-size") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise FlowNotFound(f"entrypoint file '{file}' is not valid Python: {error}", "entrypoint-syntax") from None
    project, module = _project(root, path)
    found = _find_flow(project, module, function)
    if found is None:
        defined = _flows_in(project, module)
        choices = f"; flows in that file: {', '.join(defined)}" if defined else "; that file defines no @flow"
        if not defined:
            from register.flows.legacy import hint
            choices += hint(tree, file) or ""
        raise FlowNotFound(f"'{file}' has no function '{function}'{choices}", "entrypoint-function")
    node, verdict = found
    if not verdict.is_flow:
        if verdict.reason:
            raise FlowNotFound(f"'{function}' in '{file}' is not known to be a @flow: {verdict.reason}; decorate it "
                               "with Prefect's @flow, or with a decorator of the project that visibly returns "
                               "Prefect's flow", "entrypoint-flow-unseen" if verdict.unseen else "entrypoint-not-flow")
        raise FlowNotFound(f"'{function}' in '{file}' is not a @flow: decorate it with @flow from prefect",
                           "entrypoint-not-flow")
    # `@etl_flow(name="etl")`: the team's decorator's own name= counts when it reaches Prefect's flow call
    # (passed on as **kw or as name=); a literal name= in that call wins
    site = verdict.site if verdict.call is None or any(k.arg in (None, "name", "description")
                                                      for k in verdict.call.keywords) else None
    return FlowFacts(
        function=function,
        name=_literal_kwarg(verdict.call, "name") or _literal_kwarg(site, "name") or node.name.replace("_", "-"),
        description=_literal_kwarg(verdict.call, "description") or _literal_kwarg(site, "description")
        or ast.get_docstring(node),
        var_names=tuple(a.arg for a in (node.args.vararg, node.args.kwarg) if a is not None),
        takes_any_keyword=node.args.kwarg is not None,
    )


def _project(root: Path, path: Path) -> tuple[Project, Module]:
    project = Project(Path(root), path)
    return project, project.file(path, path.stem, "")


def _find_flow(project: Project, module: Module, function: str, decorators=None):
    """(the function whose signature the flow has, the verdict on it) for the top-level name `function`: a
    decorated function, or `name = flow(fn)` / `name = my_decorator(fn)`; None when nothing has that name.
    `decorators`: a register.flows.decorators.Decorators whose bounds several look-ups share."""
    from register.flows.decorators import Decorators, Verdict

    functions = {n.name: n for n in module.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    node = functions.get(function)
    decorators = decorators or Decorators(project, module)
    if node is not None:
        unseen = None
        for decorator in node.decorator_list:
            verdict = decorators.applied(decorator)
            if verdict.is_flow:
                site = decorator if isinstance(decorator, ast.Call) else None
                return node, Verdict(True, verdict.call, site=site)
            unseen = unseen or (verdict if verdict.reason else None)
        return node, unseen or Verdict(False)
    assigned = next((n for n in reversed(module.tree.body) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                     and any(isinstance(t, ast.Name) and t.id == function for t in n.targets)), None)
    if assigned is None:
        return None
    verdict, made = decorators.called(assigned.value)
    target = functions.get(made.id) if isinstance(made, ast.Name) else None
    if target is None:
        return None
    return target, verdict


def _flows_in(project: Project, module: Module) -> list[str]:
    """The names of the file's top-level flows, for a message that lists them."""
    names = []  # in the file's order
    for n in module.tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.decorator_list:
            names.append(n.name)
        elif isinstance(n, ast.Assign) and isinstance(n.value, ast.Call):
            names += [t.id for t in n.targets if isinstance(t, ast.Name)]
    from register.flows.decorators import Decorators

    decorators = Decorators(project, module)  # one budget for the whole file
    found = []
    for name in dict.fromkeys(names):
        flow = _find_flow(project, module, name, decorators)
        if flow is not None and flow[1].is_flow:
            found.append(name)
    return found


@dataclass(frozen=True)
class FlowSchema:
    schema: dict  # the parameter schema, as `prefect deploy` registers it
    fingerprint: str  # see schema_fingerprint
    warnings: tuple[Problem, ...]  # what could not be known, at the parameter in the flow's file


def parameter_schema(root: Path, entrypoint: str) -> dict:
    """The flow's parameter schema (OpenAPI-style JSON Schema) in the form `prefect deploy` sends it, so a
    deployment that `prefect deploy` registered plans as unchanged."""
    return flow_schema(root, entrypoint).schema


def flow_schema(root: Path, entrypoint: str) -> FlowSchema:
    """The flow's parameter schema, its fingerprint, and a warning for each parameter whose type or default
    cannot be known without running code. Raises FlowNotFound as read_flow does."""
    return Schemas().of(root, entrypoint)


class Schemas:
    """Where flow schemas come from: built from source, or, for a fingerprint the server already has a
    schema for (see `label` and `learn`), taken from the server. Building one costs pydantic and griffe
    (a quarter of a second for fifty flows); reading the fingerprint costs parsing."""

    def __init__(self):
        self.known: dict[str, FlowSchema] = {}  # source fingerprint -> schema, as registered (learn first)
        self._found: dict[tuple[Path, str], FlowSchema] = {}  # a run checks and plans with the same schema

    def of(self, root: Path, entrypoint: str) -> FlowSchema:
        key = (Path(root), entrypoint)
        if key not in self._found:
            self._found[key] = self._find(*key)
        return self._found[key]

    def _find(self, root: Path, entrypoint: str) -> FlowSchema:
        read_flow(root, entrypoint)
        fingerprint = schema_fingerprint(root, entrypoint)
        known = self.known.get(fingerprint)
        if known is None:
            return _flow_schema(root, entrypoint, fingerprint)
        file = str(root / entrypoint.rpartition(":")[0])
        return FlowSchema(known.schema, fingerprint, tuple(Problem(file, w.line, w.col, w.message, w.rule, w.severity)
                                                           for w in known.warnings))

    def learn(self, label: str | None, registered_schema) -> None:
        """Remember a registered deployment's schema under the fingerprint its `label` names, when the
        schema is still the one written with that label (not edited on the server since)."""
        try:
            made = json.loads(label or "")
            if made["schema"] != _digest(registered_schema):
                return
            warnings = tuple(Problem("", line, col, message, rule, "warning") for line, col, message, rule in
                             made["warnings"])
            self.known[made["source"]] = FlowSchema(registered_schema, made["source"], warnings)
        except (ValueError, TypeError, KeyError):
            return  # not a label flow-register wrote, or from another version: the schema is built


def label(found: FlowSchema) -> str:
    """What a deployment carries so that the next run can take its schema from the server: the source
    fingerprint, a digest of the schema, and the warnings (paths left out: the checkout moves)."""
    return json.dumps({"source": found.fingerprint, "schema": _digest(found.schema),
                       "warnings": [[w.line, w.col, w.message, w.rule] for w in found.warnings]},
                      separators=(",", ":"))


def _digest(schema) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:16]


def schema_fingerprint(root: Path, entrypoint: str) -> str:
    """A hash of what the flow's schema is made from: the flow's file, every project module whose source
    the schema reads (found by following the names its signature uses), the algorithm's version and the
    installed pydantic's and griffe's.
    Equal fingerprints, equal schemas; reading it costs parsing, not building the schema."""
    file, _, function = entrypoint.rpartition(":")
    project, module, node = _flow_source(Path(root), file, function)
    if node is not None:
        _follow(project, module, [_arguments_source(node)])
    digest = hashlib.sha256(f"{SCHEMA_ALGORITHM}\0{_generators()}\0{function}\0".encode())
    for path in sorted(project.read):
        digest.update(f"{path.relative_to(project.root) if path.is_relative_to(project.root) else path}\0".encode())
        digest.update(hashlib.sha256(project.read[path]).digest())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _generators() -> str:
    """The installed versions of what describes the schema (pydantic) and its descriptions (griffe), from
    their dist-info folders' names: importlib.metadata would scan every distribution (a third of a second)."""
    import importlib.util

    found = []
    for name in ("pydantic", "pydantic_core", "griffe"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            found += sorted(p.name for p in Path(spec.origin).parent.parent.glob(f"{name}-*.dist-info"))
    return ",".join(found)


def _flow_source(root: Path, file: str, function: str) -> tuple[Project, Module, ast.FunctionDef | None]:
    project, module = _project(root, root / file)
    found = _find_flow(project, module, function)
    return project, module, found[0] if found is not None else None


_DEADLINES: dict[tuple, float] = {}


@lru_cache(maxsize=None)
def _flow_schema(root: Path, entrypoint: str, fingerprint: str) -> FlowSchema:
    from register.flows.schema import EMPTY, UNKNOWN, Parameter, is_pydantic_v1, parameter_descriptions
    from register.flows.schema import parameter_schema as make_schema
    from register.flows.values import MAX_SECONDS, Evaluator, Iterator, Unknown

    file, _, function = entrypoint.rpartition(":")
    project, module, node = _flow_source(root, file, function)
    stat = module.path.stat()  # the flows of one file share its time: (file, its version) -> deadline
    evaluator = Evaluator(project, _DEADLINES.setdefault((module.path, stat.st_mtime_ns, stat.st_size),
                                                         time.monotonic() + MAX_SECONDS))
    shown = str(root / file)
    warnings, parameters = [], []

    def read(part: ast.expr, what: str, evaluate, unknown, registered: str):
        """`part` evaluated; what cannot be known, or is known only through a fallback, is a warning."""
        evaluator.notes = []
        try:
            value = evaluate(module, part)
            if is_pydantic_v1(value):
                raise Unknown("it is a pydantic.v1 model, which flow-register does not describe")
            if isinstance(value, Iterator):
                raise Unknown("it is an iterator (map, zip, a generator...), which a run would exhaust; use a list")
        except (Unknown, RecursionError) as error:
            reason = error if isinstance(error, Unknown) else "it is nested too deeply"
            warnings.append(Problem(shown, part.lineno, part.col_offset + 1,
                                    f"the {what} ({_short(part)}) cannot be known without running code: {reason}; "
                                    f"registered {registered}", f"parameter-{what.split()[0]}-unknown", "warning"))
            return unknown
        if evaluator.notes:
            warnings.append(Problem(shown, part.lineno, part.col_offset + 1,
                                    f"the {what} ({_short(part)}) may differ where `prefect deploy` runs: "
                                    f"{'; '.join(dict.fromkeys(evaluator.notes))}",
                                    f"parameter-{what.split()[0]}-fallback", "warning"))
        return value

    for arg, default in _arguments(node):
        annotation = value = EMPTY
        if arg.annotation is not None:
            annotation = read(arg.annotation, f"type of parameter '{arg.arg}'", evaluator.annotation, EMPTY,
                              "as accepting any value")
        if default is not None:
            value = read(default, f"default of parameter '{arg.arg}'", evaluator.value, UNKNOWN,
                         "without a default (a run that does not set it gets the flow's own default)")
        parameters.append(Parameter(arg.arg, annotation, value))
    docstring = ast.get_docstring(node, clean=False)
    if docstring and len(docstring) > MAX_DOCSTRING:  # griffe takes seconds for megabytes
        warnings.append(Problem(shown, node.lineno, node.col_offset + 1,
                                f"the docstring of '{function}' is longer than {MAX_DOCSTRING:,} characters: "
                                "parameter descriptions are not read from it", "parameter-description-unread",
                                "warning"))
        docstring = None
    descriptions = parameter_descriptions(docstring)
    try:
        schema = make_schema(parameters, descriptions)
    except Exception:  # noqa: BLE001 - a default pydantic cannot encode, a name it refuses ('_private')
        kept = []
        for parameter, (arg, default) in zip(parameters, _arguments(node)):
            without_default = Parameter(parameter.name, parameter.annotation, UNKNOWN)
            for candidate in (parameter, without_default):
                try:
                    make_schema([candidate], {})
                except Exception as error:  # noqa: BLE001 - as above
                    reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                    continue
                kept.append(candidate)
                break
            part = default if default is not None else arg
            if kept and kept[-1] is without_default:
                warnings.append(Problem(shown, part.lineno, part.col_offset + 1,
                                        f"the default of parameter '{arg.arg}' cannot be described ({reason}); "
                                        "registered without a default", "parameter-default-unknown", "warning"))
            elif not kept or kept[-1] is not parameter:
                warnings.append(Problem(shown, arg.lineno, arg.col_offset + 1,
                                        f"parameter '{arg.arg}' cannot be described ({reason}); it is left out of "
                                        "the schema (`prefect deploy` fails on this flow)",
                                        "parameter-type-unknown", "warning"))
        schema = make_schema(kept, descriptions)
    return FlowSchema(schema, fingerprint, tuple(warnings))


def _arguments(node: ast.FunctionDef) -> list[tuple[ast.arg, ast.expr | None]]:
    """The parameters in `inspect.signature` order, each with its default expression."""
    a = node.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    result = list(zip(positional, defaults))
    if a.vararg:
        result.append((a.vararg, None))
    result += list(zip(a.kwonlyargs, a.kw_defaults))
    if a.kwarg:
        result.append((a.kwarg, None))
    return result


def _arguments_source(node: ast.FunctionDef) -> ast.AST:
    """The signature's annotations and defaults, as one tree to collect names from."""
    parts = [part for arg, default in _arguments(node) for part in (arg.annotation, default) if part is not None]
    return ast.Tuple(elts=parts, ctx=ast.Load())


def _follow(project: Project, module: Module, trees: list[ast.AST]) -> None:
    """Read every project module that evaluating `trees` in `module` can read (project.read records them):
    each dotted name's binding, through imports, assignments and class bodies."""
    todo = [(module, chain) for tree in trees for chain in _names(tree)]
    seen: set[tuple] = set()
    while todo:
        module, chain = todo.pop()
        if (module.path, chain) in seen or not chain:
            continue
        seen.add((module.path, chain))
        if chain[0] not in module.bindings:
            for star in module.stars:
                if isinstance(project.module(star), Module):
                    todo.append((project.module(star), chain))
        for binding in module.bindings.get(chain[0], []):
            todo += [(module, c) for test, _ in binding.conditions for c in _names(test)]
            if binding.kind == "import":
                target = project.module(binding.module)
                if isinstance(target, Module):
                    todo.append((target, chain[1:]))
            elif binding.kind == "from":
                target = project.module(binding.module)
                if isinstance(target, Module):
                    if binding.name in target.bindings:
                        todo.append((target, (binding.name, *chain[1:])))
                    else:
                        submodule = project.module(f"{binding.module}.{binding.name}")
                        if isinstance(submodule, Module):
                            todo.append((submodule, chain[1:]))
            elif binding.kind in ("value", "class"):
                todo += [(module, c) for c in _names(binding.value if binding.kind == "value" else binding.node)]
        if len(chain) > 1 and chain[0] not in module.bindings:
            submodule = project.module(f"{module.name}.{chain[0]}") if module.name else None
            if isinstance(submodule, Module):
                todo.append((submodule, chain[1:]))


def _names(tree: ast.AST) -> set[tuple[str, ...]]:
    """Dotted names read in `tree` (`a.b.c` as ('a', 'b', 'c')), those inside string annotations too;
    function bodies inside class bodies are skipped: they are never evaluated."""
    found: set[tuple[str, ...]] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack += node.decorator_list
            continue
        chain = []
        inner = node
        while isinstance(inner, ast.Attribute):
            chain.append(inner.attr)
            inner = inner.value
        if isinstance(inner, ast.Name) and (chain or isinstance(node, ast.Name)):
            found.add((inner.id, *reversed(chain)))
            continue
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):  # data: a literal of megabytes names nothing
            stack += [item for item in node.elts if not isinstance(item, ast.Constant)
                      or isinstance(item.value, str)]
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) < 200:
            try:
                stack.append(ast.parse(node.value.strip(), mode="eval"))
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                pass
            continue
        stack += ast.iter_child_nodes(node)
    return found


def _short(node: ast.AST) -> str:
    from register.flows.source import short

    return short(node)
