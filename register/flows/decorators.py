"""Whether a decorator (or a call) makes a Prefect flow, read from source: Prefect's own `flow` and `Flow`
under any name, and the project's own decorators that visibly return or apply them (`my_flow =
flow(retries=3)`, `def etl_flow(**kw): return flow(log_prints=True, **kw)`, `def pipeline(fn): return
flow(name=...)(fn)`, a wrapper decorated with @flow inside a decorator), followed through at most MAX_HOPS
project functions and MAX_STEPS expressions. Nothing is imported or executed; a decorator from outside the
project, or one whose result cannot be seen, is reported with where it is defined.
"""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass

from register.flows.source import Binding, External, Module, Project

MAX_HOPS = 8  # project functions followed from one decorator: wrappers of wrappers, not a call graph
MAX_STEPS = 20_000  # expressions and names looked at for the decorators of one entrypoint's file
MAX_SECONDS = 2.0  # for the decorators of one entrypoint's file
PREFECT_MODULES = ("prefect", "prefect.flows")


@dataclass(frozen=True)
class Kind:
    """What an expression is, as far as making a flow goes.
    'flow': prefect.flow itself; 'flow-class': prefect.Flow; 'decorator': applied to a function it returns a
    Flow; 'made': a Flow; 'function': a function of the project (`node`, in `module`); 'lambda'; 'prefect': the
    prefect module; 'module': a project module; 'param': a parameter of the function being read; 'unknown':
    cannot be seen (`why`); 'other': something that is none of these."""

    kind: str
    node: ast.AST | None = None
    module: Module | None = None
    call: ast.Call | None = None  # the call to prefect's flow/Flow that made it: its literal name=
    why: str = ""
    scope: dict | None = None  # 'function' defined inside another: the names it sees of its enclosing one


OTHER = Kind("other")


class Unseen(Exception):
    pass


@dataclass(frozen=True)
class Verdict:
    """What applying a decorator to a function gives: a flow (with the call to prefect's flow that made it, for
    its literal name= and description=), or not, with the reason why in the user's words."""

    is_flow: bool
    call: ast.Call | None = None
    reason: str = ""
    site: ast.Call | None = None  # `@my_flow(name="x")`: the decorator's own call, for its literal name=
    unseen: bool = False  # whether it makes a flow cannot be seen without running code


class Decorators:
    def __init__(self, project: Project, module: Module):
        self.project = project
        self.module = module
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS
        self.entered: list[tuple] = []  # project functions being read: a circle stops at the first repeat

    def applied(self, decorator: ast.expr) -> Verdict:
        """`decorator` (an expression of the flow's module) applied to a function."""
        kind = self.evaluate(decorator, self.module, {})
        callee = self.evaluate(decorator.func, self.module, {}) if isinstance(decorator, ast.Call) else kind
        return self._verdict(decorator, callee, self._apply(kind, positional=True))

    def called(self, call: ast.Call) -> tuple[Verdict, ast.expr | None]:
        """A module-level `name = flow(fn)` / `Flow(fn)` / `my_decorator(fn)`: the verdict and the function
        expression that the flow is made from (its first positional argument)."""
        kind = self.evaluate(call, self.module, {})
        made = call.args[0] if call.args and not isinstance(call.args[0], ast.Starred) else None
        callee = self.evaluate(call.func, self.module, {}) if kind.kind != "made" else kind
        return self._verdict(call.func, callee, kind), made

    def _verdict(self, shown: ast.expr, callee: Kind, result: Kind) -> Verdict:
        """`callee`: what the decorator (or, for `@d(...)`, `d`) is; `result`: what applying it gives."""
        if result.kind == "made":
            return Verdict(True, result.call)
        where = self._where(callee)
        if result.kind == "unknown" or callee.kind == "unknown":
            why = (result if result.kind == "unknown" else callee).why
            return Verdict(False, unseen=True, reason=f"its decorator '{_name(shown)}'{where} cannot be read as "
                                                      f"making a Prefect flow without running code: {why}")
        if callee.kind == "function":
            return Verdict(False, reason=f"its decorator '{_name(shown)}'{where} does not return a Prefect flow")
        return Verdict(False)

    def _where(self, kind: Kind) -> str:
        if kind.kind == "function" and kind.module is not None:
            return f" ({self._file(kind.module)}:{kind.node.lineno})"
        return ""

    def _file(self, module: Module) -> str:
        path = module.path
        return str(path.relative_to(self.project.root)) if path.is_relative_to(self.project.root) else str(path)

    def _tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS or time.monotonic() > self.deadline:
            raise Unseen(f"reading it takes more than {MAX_STEPS:,} steps or {MAX_SECONDS:g} s")

    # -- expressions -------------------------------------------------------------------------------------

    def evaluate(self, node: ast.expr, module: Module, local: dict[str, Kind]) -> Kind:
        try:
            return self._evaluate(node, module, local)
        except Unseen as error:
            return Kind("unknown", why=str(error))
        except RecursionError:
            return Kind("unknown", why="it is nested too deeply")

    def _evaluate(self, node: ast.expr, module: Module, local: dict[str, Kind]) -> Kind:
        self._tick()
        if isinstance(node, ast.Name):
            if node.id in local:
                return local[node.id]
            return self._global(node.id, module)
        if isinstance(node, ast.Attribute):
            base = self._evaluate(node.value, module, local)
            if base.kind == "prefect":
                return {"flow": Kind("flow"), "Flow": Kind("flow-class"), "flows": Kind("prefect")}.get(node.attr, OTHER)
            if base.kind == "module":
                return self._global(node.attr, base.module)
            if base.kind == "functools" and node.attr == "partial":
                return Kind("functools-partial")
            if base.kind == "typing" and node.attr == "cast":
                return Kind("cast")
            return base if base.kind == "unknown" else OTHER
        if isinstance(node, ast.Lambda):
            return Kind("lambda", node, module)
        if isinstance(node, ast.Call):
            callee = self._evaluate(node.func, module, local)
            return self._call(callee, node, module, local)
        return OTHER

    def _call(self, callee: Kind, call: ast.Call, module: Module, local: dict[str, Kind]) -> Kind:
        positional = bool(call.args) and not isinstance(call.args[0], ast.Starred)
        if callee.kind == "flow":  # flow(fn, ...) makes a flow, flow(...) a decorator
            return Kind("made" if positional else "decorator", call=call)
        if callee.kind == "flow-class":
            return Kind("made", call=call)
        if callee.kind == "decorator":
            return Kind("made", call=callee.call) if positional else OTHER
        if callee.kind == "function":
            return self._returns(callee, call, module, local)
        if callee.kind == "lambda":
            inner = dict(local)
            params = callee.node.args.posonlyargs + callee.node.args.args
            for index, arg in enumerate(params):
                inner[arg.arg] = Kind("param") if index or not positional else self._argument(call, module, local)
            return self._evaluate(callee.node.body, callee.module, inner)
        if callee.kind == "partial" and callee.node is not None:  # functools.partial(f, **kw)(fn)
            return self._call(callee.node, call, module, local)
        if callee.kind == "cast" and len(call.args) == 2:  # typing.cast(T, value) is value
            return self._evaluate(call.args[1], module, local)
        if callee.kind == "functools-partial" and positional:
            return Kind("partial", node=self._evaluate(call.args[0], module, local))
        return callee if callee.kind == "unknown" else OTHER

    def _argument(self, call: ast.Call, module: Module, local: dict[str, Kind]) -> Kind:
        kind = self._evaluate(call.args[0], module, local)
        return kind if kind.kind != "other" else Kind("param")

    def _apply(self, kind: Kind, positional: bool) -> Kind:
        """`kind` called with a function as its one argument."""
        fake = ast.Call(func=ast.Name("decorated", ast.Load()), args=[ast.Name("decorated", ast.Load())] if positional
                        else [], keywords=[])
        try:
            return self._call(kind, fake, self.module, {"decorated": Kind("param")})
        except Unseen as error:
            return Kind("unknown", why=str(error))
        except RecursionError:
            return Kind("unknown", why="it is nested too deeply")

    def _global(self, name: str, module: Module) -> Kind:
        bindings = module.bindings.get(name)
        if not bindings:
            for star in module.stars:
                target = self.project.module(star)
                if isinstance(target, Module) and name in target.bindings:
                    return self._global(name, target)
            return OTHER
        kinds = [self._binding(b, name, module) for b in bindings]
        # alternatives (`if`/`try` branches): one that makes a flow is enough, as the likeliest one is tried first
        return next((k for k in kinds if k.kind not in ("other", "unknown")), next(
            (k for k in kinds if k.kind == "unknown"), OTHER))

    def _binding(self, binding: Binding, name: str, module: Module) -> Kind:
        self._tick()
        if binding.kind == "function":
            return Kind("function", binding.node, module)
        if binding.kind == "value":
            return self._evaluate(binding.value, module, {})
        if binding.kind == "import":
            if binding.module in PREFECT_MODULES:
                return Kind("prefect")
            if binding.module in ("functools", "typing"):
                return Kind(binding.module)
            target = self.project.module(binding.module)
            if isinstance(target, Module):
                return Kind("module", module=target)
            return Kind("unknown", why=f"'{name}' is the module '{binding.module}', which is not a file of the "
                                       "project: flow-register reads only the project's files, never imports them")
        if binding.kind == "from":
            if binding.module in PREFECT_MODULES:
                return {"flow": Kind("flow"), "Flow": Kind("flow-class")}.get(binding.name, OTHER)
            if binding.module == "prefect" and binding.name == "flows":
                return Kind("prefect")
            if binding.module == "functools" and binding.name == "partial":
                return Kind("functools-partial")
            if binding.module in ("typing", "typing_extensions") and binding.name == "cast":
                return Kind("cast")
            target = self.project.module(binding.module)
            if isinstance(target, Module):
                if binding.name in target.bindings:
                    return self._global(binding.name, target)
                submodule = self.project.module(f"{binding.module}.{binding.name}")
                return Kind("module", module=submodule) if isinstance(submodule, Module) else \
                    self._global(binding.name, target)
            if isinstance(target, External) and binding.module.split(".")[0] != "prefect":
                return Kind("unknown", why=f"'{name}' comes from '{binding.module}', which is not a file of the "
                                           "project: flow-register reads only the project's files, never imports "
                                           "them, and knows Prefect's own flow and Flow")
        return OTHER

    # -- the project's own functions ---------------------------------------------------------------------

    def _returns(self, function: Kind, call: ast.Call, module: Module, local: dict[str, Kind]) -> Kind:
        """What calling a project function returns: a flow if one `return` visibly makes one."""
        node = function.node
        key = (function.module.path, node.lineno, node.col_offset)
        where = f"'{node.name}' ({self._file(function.module)}:{node.lineno})"
        if key in self.entered or len(self.entered) >= MAX_HOPS:
            raise Unseen(f"{where} is reached again through decorators that call each other"
                         if key in self.entered else f"{where} is more than {MAX_HOPS} decorators deep")
        if isinstance(node, ast.AsyncFunctionDef):
            return OTHER  # calling it makes a coroutine
        positional = bool(call.args) and not isinstance(call.args[0], ast.Starred)
        scope = self._scope(node, function.module, function.scope or {},
                            first=self._argument(call, module, local) if positional else Kind("param"))
        self.entered.append(key)
        try:
            results = []
            for statement in _statements(node.body):
                if isinstance(statement, ast.Return) and statement.value is not None:
                    values = [statement.value]
                    while values:  # `return apply(fn) if fn else apply`: each branch is a return
                        value = values.pop()
                        if isinstance(value, ast.IfExp):
                            values += [value.orelse, value.body]
                        else:
                            results.append(self._evaluate(value, function.module, scope))
        finally:
            self.entered.pop()
        # `def d(fn=None, **kw)`: one branch returns the flow, another a decorator (`partial(d, **kw)`); which
        # one a call takes is told by whether it passes the function
        callables = ("decorator", "function", "lambda", "partial", "flow", "flow-class")
        for wanted in (("made", *callables) if positional else (*callables, "made")):
            found = next((k for k in results if k.kind == wanted), None)
            if found is not None:
                return found
        unknown = next((k for k in results if k.kind == "unknown"), None)
        if unknown is not None:
            return Kind("unknown", why=f"{where} returns what flow-register cannot see without running code: "
                                       f"{unknown.why}")
        return OTHER

    def _scope(self, node: ast.FunctionDef, module: Module, outer: dict[str, Kind], first: Kind) -> dict[str, Kind]:
        """The names the function sees: its enclosing function's (`outer`), its parameters and the names its
        body binds (the last binding of each)."""
        scope: dict[str, Kind] = dict(outer)
        params = node.args.posonlyargs + node.args.args
        for index, arg in enumerate(params):
            scope[arg.arg] = first if index == 0 else Kind("param")
        for arg in (*node.args.kwonlyargs, node.args.vararg, node.args.kwarg):
            if arg is not None:
                scope[arg.arg] = Kind("param")
        for statement in _statements(node.body):
            self._tick()
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                scope[statement.name] = self._local_function(statement, module, scope)
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                    and isinstance(statement.targets[0], ast.Name):
                scope[statement.targets[0].id] = self.evaluate(statement.value, module, scope)
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None \
                    and isinstance(statement.target, ast.Name):  # `flow_decorator: Callable = flow`
                scope[statement.target.id] = self.evaluate(statement.value, module, scope)
            elif isinstance(statement, ast.ImportFrom) and not statement.level and statement.module:
                for alias in statement.names:
                    if alias.name != "*":
                        scope[alias.asname or alias.name] = self._binding(
                            Binding("from", statement, statement.module, alias.name), alias.asname or alias.name,
                            module)
            elif isinstance(statement, ast.Import):
                for alias in statement.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    scope[bound] = self._binding(Binding("import", statement, alias.name if alias.asname else bound),
                                                 bound, module)
        return scope

    def _local_function(self, node: ast.FunctionDef, module: Module, scope: dict[str, Kind]) -> Kind:
        """A function defined inside a decorator: a flow if one of its own decorators makes it one."""
        for decorator in node.decorator_list:
            kind = self.evaluate(decorator, module, scope)
            result = self._call(kind, ast.Call(func=decorator, args=[ast.Name("f", ast.Load())], keywords=[]),
                                module, {"f": Kind("param")}) if kind.kind != "unknown" else kind
            if result.kind == "made":
                return result
        return Kind("function", node, module, scope=scope)


def _statements(body: list):
    """The function's own statements, those in if/try/with/for too, but not those of nested functions."""
    for node in body:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        for _, value in ast.iter_fields(node):
            if isinstance(value, list) and value and isinstance(value[0], (ast.stmt, ast.excepthandler,
                                                                            ast.match_case)):
                yield from _statements(value)


def _name(node: ast.expr) -> str:
    from register.flows.source import short

    return short(node.func if isinstance(node, ast.Call) else node)
