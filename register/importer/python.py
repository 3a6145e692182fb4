"""`flow-register import deploy.py`: deployments written in Python, read and never run.

Three generations of Prefect register deployments from Python: Prefect 3's `flow.deploy(...)`,
`flow.to_deployment(...)` handed to `deploy(...)`/`serve(...)` and `flow.from_source(...).deploy(...)`;
Prefect 2's `Deployment.build_from_flow(...)` with infrastructure and storage blocks; Prefect 1's
`flow.register(...)` with a run config, storage and a schedule on `Flow(...)`. The script is parsed with
`ast` and interpreted as far as its values are written in it: literals, module-level constants and simple
assignments, f-strings and `+` of those, dicts and lists, loops over a literal list, calls of the script's
own functions, and environment reads (`os.environ["X"]`, `os.getenv("X", "d")`), which become `${X}` /
`${X:-d}` in the manifest, read at deploy time as the script read them when it ran. Anything else (what a
function of a library returns, a condition on the environment, a loop over a computed list) is known only
when the script runs: it is warned at its line and left out. Nothing of the script is imported, executed or
evaluated.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from register.prefect import resources as res
from register.manifest.source import MAX_BYTES
from register.problems import Problem

MAX_NODES = 200_000  # syntax nodes; a deploy script of a hundred deployments has about 10,000
MAX_DEPTH = 64  # nested expressions and calls of the script's own functions
MAX_STEPS = 20_000  # statements interpreted, loops unrolled included
MAX_DEPLOYMENTS = 1_000
MAX_TEXT = 100_000  # characters of one text value; `B = A + A` repeated would double it each line
MAX_ITEMS = 10_000  # items of one list or dict
# `{i:02d}`, `{x:>8}`, `{f:.2f}`: a fill, an alignment and at most three digits of width (no format costs more)
_FORMAT_SPEC = re.compile(r"(.?[<>^=])?[+ -]?#?0?\d{0,3}[,_]?(\.\d{1,2})?[bcdeEfFgGnosxX%]?")
_PYTHON = "{}.{}".format(*sys.version_info[:2])
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")

_SERVE_POOL = "serve"  # the process pool a served deployment is written for (a process worker runs it as serve did)

# Prefect 2 infrastructure and Prefect 1 run configs -> the Prefect 3 work pool type that runs them
# Prefect 2 infrastructure blocks and Prefect 1 run configs -> the work pool type (declared in resources.py)
POOL_TYPE = {**{kind: t.name for t in res.POOL_TYPES for kind in t.prefect2}, "UniversalRun": None}
# Their settings that are a job variable of the same name in the Prefect 3 worker's base job template
SAME_VARIABLE = {t.name: t.same_variables for t in res.POOL_TYPES}
STORAGE = {"S3", "GCS", "Azure", "GitHub", "GitLab", "Bitbucket", "RemoteFileSystem", "LocalFileSystem", "SMB",
           "S3Bucket", "GcsBucket", "AzureBlobStorageContainer", "GitHubRepository", "GitLabRepository",
           "GitRepository", "Docker", "Local", "Git", "Module", "Webhook"}
SCHEDULES = {"CronSchedule", "IntervalSchedule", "RRuleSchedule", "Cron", "Interval", "RRule", "Schedule",
             "CronClock", "IntervalClock", "RRuleClock", "DeploymentScheduleCreate", "MinimalDeploymentSchedule"}
TRIGGERS = {"DeploymentEventTrigger": "event", "DeploymentTrigger": "event", "DeploymentMetricTrigger": "metric",
            "DeploymentCompoundTrigger": "compound", "DeploymentSequenceTrigger": "sequence"}
_TRIGGER_KEYS = ("name", "enabled", "expect", "match", "match_related", "after", "for_each", "posture", "threshold",
                 "within", "parameters", "job_variables", "description", "metric", "triggers", "require",
                 "schedule_after")
# What flow.deploy / to_deployment / build_from_flow take that the manifest writes under the same key
_SAME_KEY = ("description", "version", "tags", "parameters", "paused", "enforce_parameter_schema")


class Unknown(Exception):
    """A value known only when the script runs; `node` is where it comes from."""

    def __init__(self, node: ast.AST, reason: str):
        super().__init__(reason)
        self.node = node
        self.reason = reason


class Deferred(str):
    """Text that reads the environment at deploy time (`${X}`): it can be written, not compared."""


class Dated(str):
    """A date and time the script writes (`datetime(2024, 1, 1, tz="Europe/Paris")`), in ISO 8601 without an
    offset; `zone` is the time zone it is in, which a schedule anchored on it runs in unless it names another."""
    zone: str | None = None


@dataclass
class Flow3:
    """A Prefect 2/3 @flow function: what a deployment runs."""
    name: str
    entrypoint: str
    node: ast.AST
    source: dict | None = None  # code: of flow.from_source


@dataclass
class Flow1:
    """A Prefect 1 `Flow(...)` object: its name and what was set on it."""
    name: str
    node: ast.AST
    settings: dict = field(default_factory=dict)  # schedule, run_config, storage: values
    file: Path | None = None  # the file that makes it, where its @flow is to be written


@dataclass
class Obj:
    """An instance of a Prefect class the import knows (a block, run config, schedule, trigger)."""
    kind: str
    args: dict  # keyword -> value; an Unknown for what cannot be known
    node: ast.AST
    positional: list = field(default_factory=list)
    loaded: str | None = None  # `.load("name")`: a block whose values are on the server


@dataclass
class Spec:
    """One deployment as a script describes it before it is registered (to_deployment, build_from_flow)."""
    flow: Flow3 | Unknown
    args: dict
    node: ast.AST
    generation: int  # 2 or 3


@dataclass
class Function:
    node: ast.FunctionDef
    scope: dict
    file: Path | None = None


@dataclass
class Lazy:
    """A name imported from a module of the project: read when it is used."""
    file: Path
    name: str
    node: ast.AST
    submodule: Path | None = None  # `from pkg import mod`: pkg/mod.py, when pkg/__init__.py has no such name


@dataclass
class Registration:
    generation: int
    flow: Flow3 | Flow1
    args: dict
    node: ast.AST
    served: bool = False
    project: str | None = None  # Prefect 1: the project it is registered in


@dataclass
class Module:
    """A module of the project bound to a name (`from flows import etl`, `import flows.etl as etl`): its names are
    read when one is used (`etl.etl_flow`)."""
    file: Path
    node: ast.AST


@dataclass
class FunctionOf:
    """`flow.fn`: the function a @flow decorates (its `__name__` is the entrypoint's function)."""
    flow: Flow3


@dataclass(frozen=True)
class Ref:
    """A name the script imports (`os`, `prefect.deploy`, an enum member): known by what it names."""
    dotted: str


class _Return(Exception):
    def __init__(self, value):
        self.value = value


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _literal_text(value: str) -> str:
    return value.replace("${", "$${")  # a literal `${` in the script stays literal in the manifest


def _cpu_units(value) -> float | None:
    """A Prefect 1/2 ECS cpu (CPU units: 1024, "1024", "1 vcpu") as vCPU."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"([0-9.]+)\s*(vcpus?)?", text)
    if not match:
        return None
    number = float(match.group(1))
    return number if match.group(2) else number / 1024


def _mib(value) -> float | None:
    """A Prefect 1/2 ECS memory (MiB: 2048, "2048", "2 GB") in MiB."""
    text = str(value).strip().lower()
    match = re.fullmatch(r"([0-9.]+)\s*(gb|gib|g|mb|mib|m)?", text)
    if not match:
        return None
    number = float(match.group(1))
    return number * 1024 if (match.group(2) or "m").startswith("g") else number


def _number(value: float):
    return int(value) if float(value).is_integer() else value


def _memory_text(mib: float) -> str:
    return f"{_number(mib / 1024)}Gi" if mib % 1024 == 0 else f"{_number(mib)}Mi"


class _Interpreter:
    def __init__(self, path: Path, root: Path, warnings: list[Problem], registrations: list[Registration],
                 modules: dict[Path, dict] | None = None, main: bool = True):
        self.path = path
        self.root = root
        self.shown = str(path)
        self.warnings = warnings
        self.registrations = registrations
        self.modules = modules if modules is not None else {}
        self.main = main  # the script run (deployments registered) or a module it imports (names only)
        self.steps = 0
        self.depth = 0
        self.scope: dict = {}
        self.built: list[Spec] = []  # Prefect 2 deployments built, applied or not (`prefect deployment apply`)
        self.called: set[int] = set()  # the script's functions a call reached (by their node's id)
        self.registering: dict[int, bool] = {}  # whether a function of the script registers, once per function
        self.flows1: list[Flow1] = []  # Prefect 1 flows the script makes, registered in it or by `prefect register`

    # -- warnings -------------------------------------------------------------------------------------
    def warn(self, node: ast.AST, message: str, rule: str) -> None:
        # names and values in the message come from the script: one line each, no terminal or workflow commands
        message = _CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
        source = getattr(node, "_flow_register_file", None)
        shown = self.shown if source is None or source == self.path else _shown(source)
        problem = Problem(shown, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1, message,
                          f"import-{rule}", severity="warning")
        if problem not in self.warnings:
            self.warnings.append(problem)

    def unknown(self, error: Unknown, what: str) -> None:
        self.warn(error.node, f"{what} is left out: {error.reason}", "unknown")

    # -- statements -----------------------------------------------------------------------------------
    def run(self, body: list[ast.stmt], scope: dict) -> None:
        for statement in body:
            self.tick(statement)
            self.statement(statement, scope)

    def tick(self, node: ast.AST) -> None:
        """One more statement or comprehension item read; refuse a script that asks for more than a real one."""
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ValueError(str(Problem(self.shown, node.lineno, node.col_offset + 1,
                                         f"more than {MAX_STEPS} statements to read (loops unrolled); a deploy "
                                         "script this large is not imported", "import-file-size")))

    def statement(self, node: ast.stmt, scope: dict) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.imports(node, scope)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            scope[node.name] = self.function(node, scope)
        elif isinstance(node, ast.ClassDef):
            scope[node.name] = Unknown(node, f"'{node.name}' is a class of the script")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            self.assign(node, scope)
        elif isinstance(node, ast.Expr):
            if isinstance(node.value, (ast.Call, ast.Await)) and self.main:
                try:
                    self.value(node.value, scope)
                except Unknown:
                    pass  # a call whose result nobody uses: only a registration in it matters, warned there
        elif isinstance(node, ast.If):
            self.branch(node, scope)
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            self.loop(node, scope)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            self.with_block(node, scope)
        elif isinstance(node, ast.Try):
            self.run(node.body, scope)
            self.run(node.orelse, scope)
            self.run(node.finalbody, scope)
        elif isinstance(node, ast.Return):
            raise _Return(self.maybe(node.value, scope) if node.value is not None else None)
        elif isinstance(node, (ast.While,)) and self.main and self.registers(node, scope):
            self.warn(node, "a while loop is known only when the script runs; the deployments it registers are "
                            "left out: write them as a loop over a literal list", "loop")

    def registers(self, node: ast.AST, scope: Mapping | None = None) -> bool:
        """Whether a statement holds a call that registers or describes deployments, itself or through a function
        of the script it calls (`if ...: deploy_all()`)."""
        for child in ast.walk(node):
            if not isinstance(child, ast.Call):
                continue
            if isinstance(child.func, ast.Attribute) and child.func.attr in (
                    "deploy", "to_deployment", "serve", "register", "build_from_flow", "apply"):
                return True
            if isinstance(child.func, ast.Name) and child.func.id in ("deploy", "serve"):
                return True
            callee = (scope or {}).get(child.func.id, self.scope.get(child.func.id)) \
                if isinstance(child.func, ast.Name) else None
            if isinstance(callee, Function):
                key = id(callee.node)
                if key not in self.registering:
                    self.registering[key] = False  # a function that calls itself is read once
                    self.registering[key] = self.registers(callee.node, callee.scope)
                if self.registering[key]:
                    return True
        return False

    def module_file(self, dotted: str, bases: list[Path]) -> tuple[Path | None, bool]:
        """The project's file of a module (`flows.etl`: flows/etl.py or flows/etl/__init__.py) and whether one was
        found at all (outside the repository too)."""
        candidates = [c for base in bases for c in (base / (dotted.replace(".", "/") + ".py"),
                                                    base / dotted.replace(".", "/") / "__init__.py")]
        found = [c for c in candidates if dotted and c.is_file()]
        return next((c for c in found if _inside(c, self.root)), None), bool(found)

    def imports(self, node: ast.Import | ast.ImportFrom, scope: dict) -> None:
        searched = list(dict.fromkeys([self.path.parent, self.root]))  # the script's folder first, then the root
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                own = None if top in sys.stdlib_module_names or top == "prefect" else \
                    self.module_file(alias.name if alias.asname else top, searched)[0]
                if own is not None:  # `import flows.etl as etl`, `import flows`: a module of the project
                    scope[alias.asname or top] = Module(own, node)
                else:
                    scope[alias.asname or top] = Ref(alias.name if alias.asname else top)
            return
        module = node.module or ""
        if node.level:
            bases = [self.path.parent]
            for _ in range(node.level - 1):
                bases = [bases[0].parent]
        else:  # as Python finds them: the script's folder first, then the folder it is run from
            bases = searched
        file, found = self.module_file(module, bases)
        package = file.parent if file is not None and file.name == "__init__.py" else \
            bases[0] if node.level and not module else None
        for alias in node.names:
            local = alias.asname or alias.name
            submodule = self.module_file(alias.name, [package])[0] if package is not None else None
            if submodule is not None and file is not None:  # `from flows import etl`: a name of flows/__init__.py,
                scope[local] = Lazy(file, alias.name, node, submodule)  # else the module flows/etl.py
            elif submodule is not None:
                scope[local] = Module(submodule, node)
            elif found and file is None:
                scope[local] = Unknown(node, f"module '{module}' is outside the repository, which the import does "
                                             "not read")
            elif file is not None:
                scope[local] = Lazy(file, alias.name, node)
            else:
                scope[local] = Ref(f"{module}.{alias.name}")

    def function(self, node, scope: dict):
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            name = self.resolved(target, scope)
            if name and name.split(".")[-1] == "flow" and name.startswith("prefect"):
                flow_name = node.name.replace("_", "-")
                if isinstance(decorator, ast.Call):
                    for keyword in decorator.keywords:
                        if keyword.arg == "name":
                            try:
                                flow_name = str(self.value(keyword.value, scope))
                            except Unknown:
                                pass
                return Flow3(flow_name, f"{_relative(self.path, self.root)}:{node.name}", node)
        return Function(node, scope, self.path)

    def assign(self, node, scope: dict) -> None:
        if isinstance(node, ast.AugAssign):
            combined = ast.BinOp(left=ast.Name(id=_dotted(node.target) or "_", ctx=ast.Load()), op=node.op,
                                 right=node.value)
            ast.copy_location(combined, node)
            ast.copy_location(combined.left, node.target)
            targets, value = [node.target], self.maybe(combined, scope)
        else:
            if node.value is None:
                return
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = self.maybe(node.value, scope)
        for target in targets:
            self.bind(target, value, scope, node)

    def bind(self, target: ast.AST, value, scope: dict, node: ast.AST) -> None:
        if isinstance(target, ast.Name):
            scope[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, (list, tuple)) and len(value) == len(target.elts):
                for part, item in zip(target.elts, value):
                    self.bind(part, item, scope, node)
            else:
                for part in target.elts:
                    self.bind(part, value if isinstance(value, Unknown) else
                              Unknown(node, "it is unpacked from a value of another length or shape"), scope, node)
        elif isinstance(target, ast.Attribute):
            owner = self.maybe(target.value, scope)
            if isinstance(owner, Flow1):
                owner.settings[target.attr] = value
            elif isinstance(owner, Obj):
                owner.args[target.attr] = value
        elif isinstance(target, ast.Subscript):
            owner, key = self.maybe(target.value, scope), self.maybe(target.slice, scope)
            if isinstance(owner, dict) and not isinstance(key, Unknown):
                owner[key] = value

    def branch(self, node: ast.If, scope: dict) -> None:
        test = node.test
        if (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
                and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)):
            taken = test.comparators[0].value == "__main__" and self.main
            if isinstance(test.ops[0], ast.NotEq):
                taken = not taken
            self.run(node.body if taken else node.orelse, scope)
            return
        try:
            condition = self.value(test, scope)
            if isinstance(condition, Deferred):
                raise Unknown(test, "it reads the environment, which the script sees only when it runs")
        except Unknown as error:
            if self.main and self.registers(node, scope):
                self.warn(test, f"this condition is known only when the script runs ({error.reason}); the "
                                "deployments registered under it are left out: write each as it should be "
                                "registered, or an environment of the manifest per case", "condition")
            self.unset(node, scope, Unknown(test, f"it is set under a condition known only when the script runs "
                                                  f"({error.reason})"))
            return
        self.run(node.body if condition else node.orelse, scope)

    def loop(self, node, scope: dict) -> None:
        try:
            items = self.value(node.iter, scope)
            if isinstance(items, dict):
                items = list(items)
            if not isinstance(items, (list, tuple)) or isinstance(items, Deferred):
                raise Unknown(node.iter, "it is not a list written in the script")
        except Unknown as error:
            if self.main and self.registers(node, scope):
                self.warn(node.iter, f"a loop over what is known only when the script runs ({error.reason}); the "
                                     "deployments it registers are left out: loop over a literal list",
                          "loop")
            self.unset(node, scope, Unknown(node.iter, f"it is set in a loop over what is known only when the script "
                                                       f"runs ({error.reason})"))
            return
        for item in items:
            self.bind(node.target, item, scope, node)
            self.run(node.body, scope)
        self.run(node.orelse, scope)

    def unset(self, node: ast.AST, scope: dict, why: Unknown) -> None:
        """The names a block not read sets (`if unknown: pool = "a" else: pool = "b"`) are unknown after it, not
        undefined and not what they were before it."""
        pending = list(ast.iter_child_nodes(node))
        while pending:
            child = pending.pop()
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue  # their names are their own
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                scope[child.id] = why
            pending.extend(ast.iter_child_nodes(child))

    def with_block(self, node, scope: dict) -> None:
        for item in node.items:
            value = self.maybe(item.context_expr, scope)
            if item.optional_vars is not None:
                self.bind(item.optional_vars, value, scope, node)
            if isinstance(value, Flow1):
                return  # the body wires a Prefect 1 flow's tasks: nothing to register
        self.run(node.body, scope)

    # -- expressions ----------------------------------------------------------------------------------
    def maybe(self, node: ast.AST, scope: dict):
        try:
            return self.value(node, scope)
        except Unknown as error:
            return error

    def resolved(self, node: ast.AST, scope: dict) -> str | None:
        """The dotted name a Name/Attribute refers to through the script's imports ('os.environ')."""
        dotted = _dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        bound = scope.get(head, self.scope.get(head))
        if isinstance(bound, Ref):
            head = bound.dotted
        elif isinstance(bound, Lazy):
            head = f"{bound.file.stem}.{bound.name}"
        return f"{head}.{rest}" if rest else head

    def value(self, node: ast.AST, scope: dict):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise Unknown(node, f"it is nested more than {MAX_DEPTH} levels deep")
            found = self._value(node, scope)
        finally:
            self.depth -= 1
        if isinstance(found, str) and len(found) > MAX_TEXT:
            raise Unknown(node, f"it is longer than {MAX_TEXT:,} characters")
        if isinstance(found, (list, tuple, dict)) and len(found) > MAX_ITEMS:
            raise Unknown(node, f"it holds more than {MAX_ITEMS:,} items")
        return found

    def _value(self, node: ast.AST, scope: dict):
        if isinstance(node, ast.Constant):
            return _literal_text(node.value) if isinstance(node.value, str) else node.value
        if isinstance(node, ast.Name):
            if node.id in scope:
                found = scope[node.id]
            elif node.id in self.scope:
                found = self.scope[node.id]
            elif node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            else:
                raise Unknown(node, f"'{node.id}' is not defined in the script")
            if isinstance(found, Unknown):
                raise Unknown(found.node, found.reason)
            if isinstance(found, Lazy):
                return self.lazy(found, node)
            return found
        if isinstance(node, ast.JoinedStr):
            parts, deferred = [], False
            for part in node.values:
                if isinstance(part, ast.Constant):
                    parts.append(_literal_text(part.value))
                    continue
                spec = self.value(part.format_spec, scope) if part.format_spec is not None else ""
                if part.conversion not in (-1, ord("s")) or not isinstance(spec, str) or isinstance(spec, Deferred) \
                        or not _FORMAT_SPEC.fullmatch(spec):
                    raise Unknown(part, "a formatted value with this format spec is computed when the script runs")
                value = self.value(part.value, scope)
                if not isinstance(value, (str, int, float)) or isinstance(value, bool) or \
                        (spec and isinstance(value, Deferred)):
                    raise Unknown(part, "it formats a value that is not text or a number")
                deferred |= isinstance(value, Deferred)
                try:
                    parts.append(format(value, spec) if spec else str(value))
                except ValueError:
                    raise Unknown(part, "this format spec does not apply to the value") from None
            text = "".join(parts)
            return Deferred(text) if deferred else text
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            out = []
            for element in node.elts:
                if isinstance(element, ast.Starred):
                    inner = self.value(element.value, scope)
                    if not isinstance(inner, (list, tuple)):
                        raise Unknown(element, "it unpacks what is not a list written in the script")
                    out.extend(inner)
                else:
                    out.append(self.value(element, scope))
            return tuple(out) if isinstance(node, ast.Tuple) else out
        if isinstance(node, ast.Dict):
            out = {}
            for key, val in zip(node.keys, node.values):
                if key is None:
                    inner = self.maybe(val, scope)
                    if isinstance(inner, Unknown):  # `{**loaded_defaults, "cpu": 1024}`: what is written is kept
                        out.setdefault("**", inner)
                    elif not isinstance(inner, dict):
                        raise Unknown(val, "it unpacks what is not a dict written in the script")
                    else:
                        out.update(inner)
                else:
                    k = self.value(key, scope)
                    if isinstance(k, Deferred):
                        raise Unknown(key, "a key read from the environment is known only when the script runs")
                    out[k] = self.maybe(val, scope)  # what is known of a dict is kept; each unknown value warned
            return out
        if isinstance(node, ast.BinOp):
            return self.binop(node, scope)
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand, scope)
            if isinstance(node.op, ast.USub) and isinstance(operand, (int, float)):
                return -operand
            if isinstance(node.op, ast.Not) and not isinstance(operand, Deferred):
                return not operand
            raise Unknown(node, "this operation is computed when the script runs")
        if isinstance(node, ast.BoolOp):
            values = [self.value(v, scope) for v in node.values]
            if any(isinstance(v, Deferred) for v in values):
                raise Unknown(node, "it reads the environment, which the script sees only when it runs")
            result = values[0]
            for v in values[1:]:
                result = (result and v) if isinstance(node.op, ast.And) else (result or v)
            return result
        if isinstance(node, ast.Compare):
            return self.compare(node, scope)
        if isinstance(node, ast.IfExp):
            test = self.value(node.test, scope)
            if isinstance(test, Deferred):
                raise Unknown(node.test, "it reads the environment, which the script sees only when it runs")
            return self.value(node.body if test else node.orelse, scope)
        if isinstance(node, ast.Subscript):
            return self.subscript(node, scope)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, scope)
        if isinstance(node, ast.Call):
            return self.call(node, scope)
        if isinstance(node, ast.Await):
            return self.value(node.value, scope)
        if isinstance(node, (ast.ListComp, ast.DictComp, ast.GeneratorExp, ast.SetComp)):
            return self.comprehension(node, scope)
        raise Unknown(node, f"a {type(node).__name__} expression is computed when the script runs")

    def binop(self, node: ast.BinOp, scope: dict):
        left, right = self.value(node.left, scope), self.value(node.right, scope)
        if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
            text = left + right
            return Deferred(text) if isinstance(left, Deferred) or isinstance(right, Deferred) else text
        if isinstance(left, Deferred) or isinstance(right, Deferred):
            raise Unknown(node, "it computes with a value read from the environment")
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        try:
            if isinstance(node.op, ast.Add) and (numbers or (isinstance(left, list) and isinstance(right, list))):
                return left + right
            if isinstance(node.op, ast.BitOr) and isinstance(left, dict) and isinstance(right, dict):
                return {**left, **right}
            if numbers and isinstance(node.op, ast.Sub):
                return left - right
            if numbers and isinstance(node.op, ast.Mult) and abs(left * right) < 1e15:
                return left * right
            if numbers and isinstance(node.op, ast.Div):
                return left / right
            if numbers and isinstance(node.op, ast.FloorDiv):
                return left // right
        except ZeroDivisionError:
            pass
        raise Unknown(node, "this operation is computed when the script runs")

    def compare(self, node: ast.Compare, scope: dict):
        left = self.value(node.left, scope)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.value(right_node, scope)
            if isinstance(left, Deferred) or isinstance(right, Deferred):
                raise Unknown(node, "it compares a value read from the environment, known only when the script runs")
            table = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.In: lambda a, b: a in b,
                     ast.NotIn: lambda a, b: a not in b, ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b}
            if type(op) not in table:
                raise Unknown(node, "this comparison is computed when the script runs")
            try:
                if not table[type(op)](left, right):
                    return False
            except TypeError:
                raise Unknown(node, "this comparison is computed when the script runs") from None
            left = right
        return True

    def subscript(self, node: ast.Subscript, scope: dict):
        if self.resolved(node.value, scope) == "os.environ":
            key = self.value(node.slice, scope)
            return self.environment(key, None, node)
        container, key = self.value(node.value, scope), self.value(node.slice, scope)
        if isinstance(key, Deferred):
            raise Unknown(node.slice, "the key is read from the environment, known only when the script runs")
        try:
            if isinstance(container, (dict, list, tuple, str)):
                found = container[key]
                if isinstance(found, Unknown):
                    raise Unknown(found.node, found.reason)
                return found
        except (KeyError, IndexError, TypeError):
            raise Unknown(node, f"the script has no {key!r} in it") from None
        raise Unknown(node, "it indexes what is not a value written in the script")

    def attribute(self, node: ast.Attribute, scope: dict):
        owner = self.value(node.value, scope)
        if isinstance(owner, Module):
            package = owner.file.parent if owner.file.name == "__init__.py" else None
            submodule = self.module_file(node.attr, [package])[0] if package is not None else None
            return self.lazy(Lazy(owner.file, node.attr, owner.node, submodule), node)
        if isinstance(owner, Flow3) and node.attr == "name":
            return owner.name
        if isinstance(owner, Flow3) and node.attr == "fn":
            return FunctionOf(owner)
        if isinstance(owner, FunctionOf) and node.attr == "__name__":
            return owner.flow.entrypoint.rpartition(":")[2]
        if isinstance(owner, Flow1):
            return owner.settings.get(node.attr)
        if isinstance(owner, Obj) and node.attr in owner.args:
            return owner.args[node.attr]
        if isinstance(owner, Ref):
            return Ref(f"{owner.dotted}.{node.attr}")
        raise Unknown(node, f"'.{node.attr}' is known only when the script runs")

    def comprehension(self, node, scope: dict):
        if len(node.generators) != 1 or node.generators[0].ifs or node.generators[0].is_async:
            raise Unknown(node, "a comprehension with conditions is computed when the script runs")
        generator = node.generators[0]
        items = self.value(generator.iter, scope)
        if isinstance(items, dict):
            items = list(items)
        if not isinstance(items, (list, tuple)):
            raise Unknown(generator.iter, "it is not a list written in the script")
        inner = dict(scope)
        out: list | dict = {} if isinstance(node, ast.DictComp) else []
        for item in items:
            self.tick(node)
            self.bind(generator.target, item, inner, node)
            if isinstance(node, ast.DictComp):
                out[self.value(node.key, inner)] = self.value(node.value, inner)
            else:
                out.append(self.value(node.elt, inner))
        return out

    def environment(self, name, default, node: ast.AST):
        if not isinstance(name, str) or isinstance(name, Deferred) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise Unknown(node, "the variable's name is not a constant of the script")
        if default is None:
            return Deferred("${" + name + "}")
        if not isinstance(default, (str, int, float)) or isinstance(default, (bool, Deferred)):
            raise Unknown(node, "the default is not text or a number written in the script")
        text = str(default)
        if "}" in text or "$" in text:
            raise Unknown(node, "the default holds '$' or '}', which a ${NAME:-default} cannot")
        return Deferred("${" + name + ":-" + text + "}")

    def lazy(self, found: Lazy, node: ast.AST, hops: int = 0):
        """A name imported from the project: a @flow read from its file, or a constant of that module."""
        names = self.modules.get(found.file)
        if names is None:
            if len(self.modules) > 50:
                raise Unknown(node, "the script imports more than 50 of the project's modules")
            self.modules[found.file] = {}  # an import cycle finds nothing instead of recursing
            try:
                tree = read_tree(found.file)
            except Unreadable as error:
                # every name of it is said to be unread, not "not defined"
                failed = self.modules[found.file] = Unknown(
                    found.node, f"{_relative(found.file, self.root)}:{error.problem.line}:{error.problem.col} is not "
                                f"read: {error.problem.message}")
                raise Unknown(failed.node, failed.reason) from None
            module = _Interpreter(found.file, self.root, self.warnings, self.registrations, self.modules, main=False)
            module.run(tree.body, module.scope)
            names = self.modules[found.file] = module.scope
        if isinstance(names, Unknown):
            raise Unknown(names.node, names.reason)
        value = names.get(found.name)
        if value is None and found.submodule is not None:
            return Module(found.submodule, found.node)
        if value is None:
            raise Unknown(found.node, f"'{found.name}' is not a name {_relative(found.file, self.root)} defines")
        if isinstance(value, Unknown):
            raise Unknown(value.node, value.reason)
        if isinstance(value, Lazy):  # re-exported (`from .report import report` in a package's __init__.py)
            if hops >= 16:
                raise Unknown(found.node, f"'{found.name}' is imported in a circle of the project's modules")
            return self.lazy(value, node, hops + 1)
        return value

    # -- calls ----------------------------------------------------------------------------------------
    def arguments(self, node: ast.Call, scope: dict) -> tuple[list, dict]:
        """Positional and keyword arguments, each a value or the Unknown that says why not."""
        positional, keywords = [], {}
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                inner = self.maybe(arg.value, scope)
                if isinstance(inner, (list, tuple)):
                    positional.extend(inner)
                else:
                    positional.append(Unknown(arg, "it unpacks what is not a list written in the script"))
            else:
                positional.append(self.maybe(arg, scope))
        for keyword in node.keywords:
            value = self.maybe(keyword.value, scope)
            if keyword.arg is None:
                if isinstance(value, dict):
                    keywords.update(value)
                else:
                    keywords["**"] = Unknown(keyword.value, "keyword arguments unpacked from what is not a dict "
                                                            "written in the script")
            else:
                keywords[keyword.arg] = value
        return positional, keywords

    def call(self, node: ast.Call, scope: dict):
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = self.maybe(func.value, scope)
            method = func.attr
            handled = self.method(owner, method, node, scope)
            if handled is not NotImplemented:
                return handled
        name = self.resolved(func, scope) or ""
        last = name.split(".")[-1]
        if name in ("os.getenv", "os.environ.get"):
            args, kwargs = self.arguments(node, scope)
            for value in args + list(kwargs.values()):
                if isinstance(value, Unknown):
                    raise value
            default = args[1] if len(args) > 1 else kwargs.get("default")
            return self.environment(args[0] if args else kwargs.get("key"), default, node)
        if name in ("os.path.join", "posixpath.join") and not node.keywords:  # an image: join(REGISTRY, "etl")
            args, _ = self.arguments(node, scope)
            for value in args:
                if isinstance(value, Unknown):
                    raise value
            if not args or not all(isinstance(a, str) for a in args):
                raise Unknown(node, "it joins what is not text written in the script")
            joined = args[0]
            for part in args[1:]:
                joined = part if part.startswith("/") else f"{joined}/{part}" if joined and not joined.endswith("/") \
                    else joined + part
            return Deferred(joined) if any(isinstance(a, Deferred) for a in args) else joined
        callee = self.maybe(func, scope) if isinstance(func, ast.Name) else None
        if isinstance(callee, Function):
            return self.call_function(callee, node, scope)
        args, kwargs = self.arguments(node, scope)
        if name.startswith(("prefect", "datetime", "pendulum")) or last in POOL_TYPE or last in STORAGE or \
                last in SCHEDULES or last in TRIGGERS or last in ("timedelta", "Flow", "deploy", "serve"):
            return self.prefect_call(name, last, args, kwargs, node)
        if last in ("str", "int", "float", "bool", "dict", "list", "tuple", "len", "sorted", "range", "enumerate", "zip") \
                and name == last:
            return self.builtin(last, args, kwargs, node)
        called = name or (f".{func.attr}" if isinstance(func, ast.Attribute) else "this call")
        raise Unknown(node, f"it is what {called}(...) returns, known only when the script runs")

    def builtin(self, name: str, args: list, kwargs: dict, node: ast.AST):
        for value in args + list(kwargs.values()):
            if isinstance(value, Unknown):
                raise value
        if any(isinstance(v, Deferred) for v in args) and name in ("int", "float", "str"):
            return args[0]  # `${X}` written unquoted is typed when the manifest reads it
        try:
            if name == "range" and all(isinstance(a, int) and not isinstance(a, bool) for a in args) and not kwargs:
                if len(range(*args)) > MAX_ITEMS:
                    raise Unknown(node, f"it holds more than {MAX_ITEMS:,} items")
                return list(range(*args))
            start = args[1] if len(args) > 1 else kwargs.get("start", 0)
            if name == "enumerate" and args and isinstance(args[0], (list, tuple, dict)) and isinstance(start, int):
                return [(start + i, item) for i, item in enumerate(args[0])]
            if name == "zip" and args and all(isinstance(a, (list, tuple, dict)) for a in args) and not kwargs:
                return [tuple(items) for items in zip(*args)]
            if name in ("range", "enumerate", "zip"):
                raise TypeError
            if name == "dict":
                return dict(*args, **kwargs)
            if name in ("list", "tuple", "sorted"):
                return list(args[0]) if name != "sorted" else sorted(args[0])
            return {"str": str, "int": int, "float": float, "bool": bool, "len": len}[name](*args)
        except (TypeError, ValueError, IndexError):
            raise Unknown(node, f"{name}(...) of these values fails or is computed when the script runs") from None

    def call_function(self, callee: Function, node: ast.Call, scope: dict):
        if self.depth > MAX_DEPTH // 2:
            raise Unknown(node, "the script's functions call each other too deeply to follow")
        args, kwargs = self.arguments(node, scope)
        local = self.parameters(callee, args, kwargs, lambda param: Unknown(node, f"'{param.arg}' is not given"))
        self.called.add(id(callee.node))
        try:
            self.depth += 4
            self.run(callee.node.body, local)
        except _Return as returned:
            if isinstance(returned.value, Unknown):
                raise returned.value from None
            return returned.value
        finally:
            self.depth -= 4
        return None

    def parameters(self, callee: Function, args: list, kwargs: dict, missing) -> dict:
        """The function's scope with its parameters bound; `missing(param)` is the value of one not given."""
        definition = callee.node.args
        local = dict(callee.scope)
        params = definition.posonlyargs + definition.args
        defaults = [None] * (len(params) - len(definition.defaults)) + list(definition.defaults)
        for i, param in enumerate(params):
            if i < len(args):
                local[param.arg] = args[i]
            elif param.arg in kwargs:
                local[param.arg] = kwargs[param.arg]
            elif defaults[i] is not None:
                local[param.arg] = self.maybe(defaults[i], callee.scope)
            else:
                local[param.arg] = missing(param)
        for param, default in zip(definition.kwonlyargs, definition.kw_defaults):
            local[param.arg] = kwargs[param.arg] if param.arg in kwargs else \
                self.maybe(default, callee.scope) if default is not None else missing(param)
        named = {p.arg for p in params + definition.kwonlyargs}
        if definition.vararg is not None:
            local[definition.vararg.arg] = list(args[len(params):])
        if definition.kwarg is not None:
            local[definition.kwarg.arg] = {k: v for k, v in kwargs.items() if k not in named and k != "**"}
        return local

    def uncalled(self, tree: ast.Module) -> None:
        """Functions of the script that register deployments and that nothing in the file calls (a `main()` an entry
        point, a CLI or another module calls): read once as if called without arguments, and said so."""
        own = {id(n): n for n in _defined_at_top(tree.body)}
        calls: dict[str, int] = {}  # calls of each name anywhere in the file, but from inside the function itself
        for definition in own.values():
            calls.setdefault(definition.name, 0)
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in calls:
                calls[call.func.id] += 1
        for definition in own.values():
            calls[definition.name] -= sum(1 for c in ast.walk(definition) if isinstance(c, ast.Call) and
                                          isinstance(c.func, ast.Name) and c.func.id == definition.name)
        functions = {id(v.node): v for v in self.scope.values() if isinstance(v, Function)}  # `run = main` once
        for function in list(functions.values()):
            node = function.node
            if id(node) not in own or id(node) in self.called or calls.get(node.name, 0) > 0 or self.is_task(node):
                continue
            if not self.registers(node, function.scope):
                continue
            registered, built, warned = len(self.registrations), len(self.built), len(self.warnings)
            local = self.parameters(function, [], {}, lambda param: Unknown(
                param, f"'{param.arg}' is a parameter of {node.name}() without a default: its caller gives it"))
            self.called.add(id(node))
            try:
                self.depth += 4
                self.run(node.body, local)
            except _Return:
                pass
            finally:
                self.depth -= 4
            found = len(self.registrations) > registered or len(self.built) > built
            if found or any(w.rule in ("import-loop", "import-condition") for w in self.warnings[warned:]):
                self.warn(node, f"read as if `{node.name}()` were called: nothing in this file calls it", "uncalled")
            else:  # a method named deploy of something else (a model, a client): nothing of deployments was here
                del self.warnings[warned:]

    def is_task(self, node) -> bool:
        """A Prefect @task: it runs inside a flow and registers nothing."""
        for decorator in node.decorator_list:
            name = self.resolved(decorator.func if isinstance(decorator, ast.Call) else decorator, self.scope) or ""
            if name.startswith("prefect") and name.split(".")[-1] == "task":
                return True
        return False

    def method(self, owner, method: str, node: ast.Call, scope: dict):
        """Calls on a value: a flow's deploy/to_deployment/serve/register, a spec's apply, dict and str methods."""
        if isinstance(owner, Unknown):
            if method in ("deploy", "serve", "register", "apply") and self.main:
                self.warn(owner.node, f"the deployment '.{method}(...)' registers here is left out: {owner.reason}",
                          "unknown")
                return None
            return NotImplemented
        args, kwargs = self.arguments(node, scope)
        if isinstance(owner, Flow3):
            if method in ("deploy", "serve", "to_deployment"):
                named = dict(kwargs)
                if args:
                    named.setdefault("name", args[0])
                spec = Spec(owner, named, node, 3)
                if method == "to_deployment":
                    return spec
                if self.main:
                    self.registrations.append(Registration(3, owner, named, node, served=method == "serve"))
                return None
            if method == "with_options":
                name = kwargs.get("name")
                return Flow3(name if isinstance(name, str) else owner.name, owner.entrypoint, node, owner.source)
            if method == "from_source":
                return self.from_source(args, kwargs, node)
        if isinstance(owner, Flow1) and method == "register":
            if self.main:
                named = dict(kwargs)
                if args:
                    named.setdefault("project_name", args[0])
                # what is set on the flow when it registers (a loop sets it again for the next stage)
                self.registrations.append(Registration(1, Flow1(owner.name, owner.node, dict(owner.settings), owner.file), named,
                                                       node))
            return None
        if isinstance(owner, Flow1) and method in ("run_config", "schedule", "storage"):
            return NotImplemented
        if isinstance(owner, Spec) and method == "apply":
            if self.main:
                self.registrations.append(Registration(owner.generation, owner.flow, owner.args, owner.node))
            owner.args["__applied__"] = True
            return None
        if isinstance(owner, Ref):
            qualified = f"{owner.dotted}.{method}"
            last = owner.dotted.split(".")[-1]
            if method == "load" and (last in POOL_TYPE or last in STORAGE or qualified.startswith("prefect")):
                block = args[0] if args else kwargs.get("name")
                return Obj(last, {}, node, loaded=block if isinstance(block, str) else "?")
            if method == "build_from_flow" and last == "Deployment":
                spec = Spec(kwargs.get("flow", args[0] if args else Unknown(node, "no flow= given")), kwargs, node, 2)
                if isinstance(spec.flow, Unknown) and self.main:
                    self.unknown(spec.flow, "this deployment's flow")
                if kwargs.get("apply") is True and self.main and isinstance(spec.flow, Flow3):
                    self.registrations.append(Registration(2, spec.flow, kwargs, node))
                    kwargs["__applied__"] = True
                if self.main:
                    self.built.append(spec)
                return spec
            if method == "from_source" and last == "flow":
                return self.from_source(args, kwargs, node)
            if method in ("deploy", "serve", "register", "to_deployment") and self.main:
                self.warn(node, f"'{owner.dotted}' is not a flow the import finds: its module is not a file of the "
                                f"repository ({self.root}); the deployment '.{method}(...)' registers is left out "
                                "(run the import from the folder the script is run from)", "unknown")
                return None if method != "to_deployment" else Unknown(node, f"'{owner.dotted}' is not found")
            return NotImplemented
        if isinstance(owner, list) and method in ("append", "extend", "insert"):  # deployments.append(spec)
            added = [args[-1]] if method != "extend" else args[0] if args and isinstance(args[0], (list, tuple)) \
                else [Unknown(node, "it extends the list with what is not a list written in the script")]
            if len(owner) + len(added) > MAX_ITEMS:
                raise Unknown(node, f"it holds more than {MAX_ITEMS:,} items")
            if method == "insert" and len(args) == 2 and isinstance(args[0], int):
                owner.insert(args[0], args[1])
            else:
                owner.extend(added)
            return None
        if isinstance(owner, Function) and method in ("deploy", "serve", "to_deployment") and owner.node.decorator_list:
            # a flow made by the team's own decorator (`@pipeline_flow`, wrapping Prefect's @flow): only a flow has these
            made = Flow3(owner.node.name.replace("_", "-"), f"{_relative(owner.file or self.path, self.root)}:"
                                                            f"{owner.node.name}", owner.node)
            if self.main:
                decorator = owner.node.decorator_list[0]
                shown = _dotted(decorator.func if isinstance(decorator, ast.Call) else decorator) or "its decorator"
                self.warn(node, f"'{owner.node.name}' is decorated with @{shown}, not Prefect's @flow; it is taken as "
                                f"the flow '{made.name}' because .{method}(...) is called on it (check the flow's name: "
                                f"@{shown} may give it another)", "flow")
            return self.method(made, method, node, scope)
        if isinstance(owner, dict) and method in ("get", "items", "keys", "values", "copy"):
            for value in args:
                if isinstance(value, Unknown):
                    raise value
            if method == "get":
                found = owner.get(args[0], args[1] if len(args) > 1 else None)
                if isinstance(found, Unknown):
                    raise Unknown(found.node, found.reason)
                return found
            if method == "copy":
                return dict(owner)
            return {"items": lambda: list(owner.items()), "keys": lambda: list(owner),
                    "values": lambda: list(owner.values())}[method]()
        if isinstance(owner, str) and not isinstance(owner, Deferred) and method in (
                "upper", "lower", "strip", "replace", "format", "join", "title", "capitalize"):
            for value in args + list(kwargs.values()):
                if isinstance(value, Unknown):
                    raise value
            if method == "join":
                if not isinstance(args[0], (list, tuple)) or not all(isinstance(a, str) for a in args[0]):
                    raise Unknown(node, "it joins what is not a list of text written in the script")
                joined = owner.join(args[0])
                return Deferred(joined) if any(isinstance(a, Deferred) for a in args[0]) else joined
            if method == "format":
                deferred = any(isinstance(a, Deferred) for a in args + list(kwargs.values()))
                try:
                    text = owner.format(*args, **kwargs)
                except (IndexError, KeyError, ValueError):
                    raise Unknown(node, "this format fails or is computed when the script runs") from None
                return Deferred(text) if deferred else text
            return getattr(owner, method)(*args)
        return NotImplemented

    def from_source(self, args: list, kwargs: dict, node: ast.AST) -> Flow3 | Unknown:
        source = kwargs.get("source", args[0] if args else None)
        entrypoint = kwargs.get("entrypoint", args[1] if len(args) > 1 else None)
        if not isinstance(entrypoint, str) or isinstance(entrypoint, Deferred):
            return Unknown(node, "flow.from_source's entrypoint is not text written in the script")
        code: dict = {}
        if isinstance(source, str) and not isinstance(source, Deferred) and re.match(r"(https?|git|ssh)://|git@", source):
            code = {"git": {"repository": source}}
        elif isinstance(source, Obj) and source.kind == "GitRepository":
            git = {"repository": source.args.get("url", source.positional[0] if source.positional else "")}
            if isinstance(source.args.get("branch"), str):
                git["ref"] = source.args["branch"]
            if source.args.get("credentials") is not None:
                self.warn(node, "the git credentials are not converted: name a block or an environment variable in "
                                "code.git.credentials", "git")
            code = {"git": git}
        elif isinstance(source, str) and not source.startswith(("s3://", "gs://", "gcs://", "az://", "abfs://")):
            code = {}  # a local folder: the code is where the manifest is
        else:
            self.warn(node, "code from object storage (or a storage block) is not a source `code:` reads: build the "
                            "code into the image (`image:`), or clone it with code.git", "storage")
        module_file, _, function = entrypoint.rpartition(":")
        name = function.replace("_", "-")
        if not code and (self.root / module_file).is_file() and _inside(self.root / module_file, self.root):
            from register.flows import FlowNotFound, read_flow
            try:
                name = read_flow(self.root, entrypoint).name
            except FlowNotFound:
                pass
        return Flow3(name, entrypoint, node, code or None)

    def prefect_call(self, name: str, last: str, args: list, kwargs: dict, node: ast.Call):
        if last == "timedelta":
            seconds = 0.0
            units = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1,
                     "milliseconds": 0.001}
            for value, unit in zip(args, ("days", "seconds")):
                kwargs.setdefault(unit, value)
            for unit, value in kwargs.items():
                if unit not in units or not isinstance(value, (int, float)) or isinstance(value, bool):
                    raise Unknown(node, "a timedelta of what is not a number written in the script")
                seconds += value * units[unit]
            return _number(seconds)
        if last in ("datetime",) and name.startswith(("datetime", "pendulum")):
            fields = ("year", "month", "day", "hour", "minute", "second")
            parts = dict(zip(fields, args))
            parts.update({k: v for k, v in kwargs.items() if k in fields})
            if not all(isinstance(parts.get(f, 0), int) and not isinstance(parts.get(f, 0), bool) for f in fields) \
                    or len(args) > 6 or not all(f in parts for f in fields[:3]):
                raise Unknown(node, "a date of what is not numbers written in the script")
            zone = kwargs.get("tz", kwargs.get("tzinfo"))
            if isinstance(zone, Ref) and zone.dotted.rsplit(".", 1)[-1] in ("utc", "UTC"):
                zone = "UTC"  # datetime.timezone.utc, pendulum.UTC
            if zone is not None and (not isinstance(zone, str) or isinstance(zone, Deferred)):
                raise Unknown(node, "the date's time zone is computed when the script runs")
            if any(k not in (*fields, "tz", "tzinfo") for k in kwargs):
                raise Unknown(node, "a date with more than year to second and its time zone")
            dated = Dated("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}".format(*(parts.get(f, 0) for f in fields)))
            dated.zone = zone
            return dated
        if last == "Flow" and not name.startswith("prefect.flows") and (name.startswith("prefect") or name == "Flow"):
            flow_name = kwargs.get("name", args[0] if args else None)
            if not isinstance(flow_name, str):
                raise Unknown(node, "the flow's name is not text written in the script")
            made = Flow1(flow_name, node, {k: v for k, v in kwargs.items() if k in ("schedule", "run_config",
                                                                                       "storage")}, self.path)
            if self.main:
                self.flows1.append(made)
            return made
        wrapped = last in ("deploy", "serve") and any(isinstance(a, Spec) for a in args)
        if wrapped and not name.startswith("prefect") and name not in ("deploy", "serve") and self.main:
            self.warn(node, f"'{name}' is taken as Prefect's {last}(): it is given deployments", "flow")
        if last in ("deploy", "serve") and (name.startswith("prefect") or name in ("deploy", "serve") or wrapped):
            for i, spec in enumerate(args):
                if isinstance(spec, Unknown):
                    if self.main:
                        self.unknown(spec, f"deployment {i + 1} of {last}(...)")
                    continue
                if not isinstance(spec, Spec):
                    continue
                named = dict(spec.args)
                for key in ("work_pool_name", "image", "build", "push"):
                    if key in kwargs and key not in named:
                        named[key] = kwargs[key]
                if last == "deploy" and kwargs.get("work_pool_name") is not None:
                    named["work_pool_name"] = kwargs["work_pool_name"]  # deploy() applies each to its pool
                if self.main:
                    self.registrations.append(Registration(3, spec.flow, named, spec.node, served=last == "serve"))
            return None
        if last in POOL_TYPE or last in STORAGE or last in SCHEDULES or last in TRIGGERS or \
                last in ("DockerImage", "ConcurrencyLimitConfig"):
            return Obj(last, kwargs, node, args)
        raise Unknown(node, f"it is what {name}(...) returns, known only when the script runs")


def _defined_at_top(body: list[ast.stmt]):
    """The functions a module defines at its top, also under its `if`, `try` and `with` blocks."""
    for statement in body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield statement
        elif isinstance(statement, (ast.If, ast.Try, ast.With, ast.AsyncWith)):
            for inner in (statement.body, getattr(statement, "orelse", []), getattr(statement, "finalbody", []),
                          *[h.body for h in getattr(statement, "handlers", [])]):
                yield from _defined_at_top(inner)


_FIRST_LINE = ast.Pass(lineno=1, col_offset=0)  # where a warning about the file as a whole goes


def _shown(path: Path) -> str:
    """A file as warnings name it: relative to the folder the import runs in when it is inside it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


class Unreadable(ValueError):
    """A Python file the import refuses to read (too large, not valid Python): `problem` says where and why."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


def read_tree(path: Path, shown: str | None = None) -> ast.Module:
    """The syntax tree of a Python file, refused (Unreadable, a ValueError) beyond what a real deploy script needs."""
    shown = shown or str(path)
    with path.open("rb") as file:
        raw = file.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        size = path.stat().st_size / 1024 / 1024
        raise Unreadable(Problem(shown, 1, 1, f"the file is {size:.1f} MiB; a Python file to import may be "
                                                      f"at most {MAX_BYTES // 1024 // 1024} MiB", "import-file-size"))
    try:
        tree = ast.parse(raw, filename=str(path))
    except SyntaxError as error:
        raise Unreadable(Problem(shown, error.lineno or 1, error.offset or 1,
                                     f"not valid Python: {error.msg} (read as Python {_PYTHON} reads it; a file "
                                     f"written for a newer Python is read by flow-register run on that Python)",
                                     "import-syntax")) from None
    except (RecursionError, MemoryError):
        raise Unreadable(Problem(shown, 1, 1, "nested too deeply to read", "import-file-size")) from None
    seen = 0
    for node in ast.walk(tree):
        seen += 1
        node._flow_register_file = path  # a warning at a node of a module the script imports names that module
        if seen > MAX_NODES:
            raise Unreadable(Problem(shown, getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1,
                                         f"more than {MAX_NODES} syntax nodes in one file (a real deploy script has "
                                         "a few thousand); import a smaller file", "import-file-size"))
    return tree


# -- registrations -> manifest deployments ------------------------------------------------------------
class _Converter:
    def __init__(self, interpreter: _Interpreter, environment: str):
        self.i = interpreter
        self.environment = environment
        self.image: dict | None = None

    def warn(self, node, message, rule):
        self.i.warn(node, message, rule)

    def known(self, value, node, what: str, depth: int = 0):
        """`value`, or None with a warning when it is known only when the script runs."""
        if depth > 32:  # a dict the script put into itself
            self.warn(node, f"{what} is left out: it is nested more than 32 levels deep", "unknown")
            return None
        if isinstance(value, Unknown):
            self.i.unknown(value, what)
            return None
        if isinstance(value, (list, tuple)):
            kept = [self.known(v, node, what, depth + 1) for v in value]
            return [v for v in kept if v is not None]
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k == "**" and isinstance(v, Unknown):
                    self.i.unknown(v, f"what {what} unpacks (`**`)")
                    continue
                kept = self.known(v, node, f"{what}.{k}", depth + 1)
                if kept is not None or v is None:
                    out[str(k)] = kept
            return out
        if isinstance(value, Ref) and value.dotted.startswith("prefect") and value.dotted.count(".") >= 2:
            return value.dotted.rsplit(".", 1)[1]  # an enum member: ConcurrencyLimitStrategy.CANCEL_NEW, Posture.Reactive
        if isinstance(value, Ref):
            self.warn(node, f"{what} is left out: it is '{value.dotted}', from a module the import does not read",
                      "unknown")
            return None
        if isinstance(value, (Obj, Flow1, Flow3, Spec, Function, Module, FunctionOf)):
            self.warn(node, f"{what} is left out: it is not a value the manifest can hold", "unknown")
            return None
        return str(value) if isinstance(value, (Deferred, Dated)) else value

    def deployment(self, registration: Registration) -> tuple[str, dict] | None:
        if registration.generation == 1:
            return self.prefect1(registration)
        flow, args, node = registration.flow, dict(registration.args), registration.node
        if isinstance(flow, Unknown):
            self.i.unknown(flow, "this deployment's flow")
            return None
        if args.get("**") is not None:
            self.i.unknown(args.pop("**"), "some of this deployment's settings")
        name = self.known(args.get("name", flow.name if registration.generation == 2 else None), node, "the name")
        if name is None:
            name = flow.name
            self.warn(node, f"the deployment has no name the import can read; named '{name}' after its flow", "name")
        out: dict = {"name": str(name)}
        entrypoint = self.known(args.get("entrypoint"), node, "the entrypoint") or flow.entrypoint
        out["entrypoint"] = entrypoint
        for key in _SAME_KEY:
            if args.get(key) is not None:
                value = self.known(args[key], node, key)
                if value is not None and value != [] and value != {}:
                    out[key] = value
        if out.get("enforce_parameter_schema") is True:
            del out["enforce_parameter_schema"]  # the default, in the manifest as in Prefect 3
        if registration.generation == 2:
            self.prefect2(args, node, out)
        else:
            self.prefect3(args, node, out, registration.served)
        schedules = self.schedules(args, node)
        if schedules:
            out["schedules"] = schedules
        given = args.get("triggers")
        if isinstance(given, Unknown):
            self.i.unknown(given, "the triggers")
        triggers = [self.trigger(t, node) for t in (given if isinstance(given, (list, tuple)) else [])]
        triggers = [t for t in triggers if t]
        if triggers:
            out["triggers"] = triggers
        limit = args.get("concurrency_limit")
        if isinstance(limit, Obj):
            out["concurrency_limit"] = {k: self.known(v, node, "concurrency_limit") for k, v in limit.args.items()
                                        if k in ("limit", "collision_strategy", "grace_period_seconds")}
        elif limit is not None:
            value = self.known(limit, node, "concurrency_limit")
            if value is not None:
                out["concurrency_limit"] = value
        if flow.source:
            out["code"] = flow.source
        return self.environment, out

    # Prefect 3 ---------------------------------------------------------------------------------------
    def prefect3(self, args: dict, node, out: dict, served: bool) -> None:
        if served:
            self.warn(node, f"a served deployment runs in the script's own process, which has no work pool; it is "
                            f"written for a process work pool '{_SERVE_POOL}' (a `prefect worker start --pool "
                            f"{_SERVE_POOL}` runs it as serve did): create it or name your pool", "serve")
            out["work_pool"] = {"name": _SERVE_POOL, "type": "process"}
        else:
            pool = self.known(args.get("work_pool_name"), node, "the work pool")
            if pool:
                out["work_pool"] = pool
            elif "work_pool_name" not in args:
                self.warn(node, "no work pool: set work_pool in the manifest (prefect deploy used the default "
                                "work pool setting)", "work-pool")
        queue = self.known(args.get("work_queue_name"), node, "the work queue")
        if queue:
            out["work_queue"] = queue
        variables = self.known(args.get("job_variables"), node, "job_variables") or {}
        image = args.get("image")
        if image is not None and not served:
            build = args.get("build", True)
            reference, dockerfile = image, "auto"
            if isinstance(image, Obj):  # DockerImage(name=..., tag=..., dockerfile=...)
                reference = image.args.get("name", image.positional[0] if image.positional else None)
                tag = image.args.get("tag", image.positional[1] if len(image.positional) > 1 else None)
                if isinstance(reference, str) and isinstance(tag, str):
                    reference = f"{reference}:{tag}"
                dockerfile = image.args.get("dockerfile", "auto")
            reference = self.known(reference, node, "the image")
            if reference and build is False:
                variables = {"image": reference, **variables}  # a prebuilt image, pulled as the script named it
            elif reference:
                repository = re.sub(r":[^:/]+$", "", str(reference))
                if repository != reference:
                    self.warn(node, f"the image tag in '{reference}' is not converted: flow-register tags the image "
                                    "by its content", "image")
                self.image = {"repository": repository, "dockerfile": dockerfile if isinstance(dockerfile, str)
                              else "auto"}
                if args.get("push") is False:
                    self.warn(node, "push=False is not converted: deploy pushes the image it builds (--no-push "
                                    "builds without pushing)", "image")
        if variables:
            out["job_variables"] = variables
        read = ("cron", "interval", "rrule", "schedule", "schedules", "triggers", "concurrency_limit", "name",
                "work_pool_name", "work_queue_name", "job_variables", "image", "build", "push", "entrypoint",
                "__applied__", *_SAME_KEY)
        for key in [k for k in args if k not in read]:
            if key not in ("timezone", "print_next_steps", "print_starting_message", "limit", "pause_on_shutdown",
                           "webserver", "entrypoint_type", "ignore_warnings", "_sla", "sla"):
                self.warn(node, f"'{key}' is not converted: the manifest has no such setting", "unknown")
            elif key in ("sla", "_sla"):
                self.warn(node, "sla is not converted: the manifest has no such setting", "unknown")

    # Prefect 2 ---------------------------------------------------------------------------------------
    def prefect2(self, args: dict, node, out: dict) -> None:
        infrastructure = args.get("infrastructure")
        pool_type = None
        variables: dict = {}
        resources: dict = {}
        if isinstance(infrastructure, Obj):
            pool_type, resources, variables = self.infrastructure(infrastructure)
        elif isinstance(infrastructure, Unknown):
            self.i.unknown(infrastructure, "the infrastructure")
        pool = self.known(args.get("work_pool_name"), node, "the work pool")
        queue = self.known(args.get("work_queue_name"), node, "the work queue")
        if pool:
            if queue:
                out["work_queue"] = queue
        elif queue:
            pool = queue
            self.warn(node, f"an agent's work queue '{queue}' becomes the work pool '{queue}'"
                            f"{f' of type {pool_type}' if pool_type else ''}: in Prefect 3 a worker polls a work "
                            "pool (create it, or name the pool your worker polls)", "agent")
        elif "work_queue_name" not in args:  # Prefect 2's Deployment put it in the queue 'default'
            pool = "default"
            self.warn(node, f"no work queue: Prefect 2 put this deployment in the work queue 'default', which becomes "
                            f"the work pool 'default'{f' of type {pool_type}' if pool_type else ''}: in Prefect 3 a "
                            "worker polls a work pool (create it, or name the pool your worker polls)", "agent")
        else:
            self.warn(node, "no work pool or queue: set work_pool in the manifest", "work-pool")
        if pool:
            out["work_pool"] = {"name": pool, "type": pool_type} if pool_type else pool
        if resources:
            out["resources"] = resources
        overrides = self.known(args.get("job_variables", args.get("infra_overrides")), node, "infra_overrides") or {}
        for key, value in overrides.items():
            holder = variables
            *parents, leaf = key.split(".")  # Prefect 2's dotted overrides ('env.NAME')
            for parent in parents:
                holder = holder.setdefault(parent, {})
            holder[leaf] = value
        if variables:
            out["job_variables"] = variables
        storage = args.get("storage")
        if storage is not None:
            code = self.storage(storage, node)
            if code:
                out["code"] = code
        if args.get("path") is not None:
            self.warn(node, "path is not converted: runs start in the image's workdir or the clone's folder "
                            "(code.directory)", "storage")
        if not args.get("__applied__"):
            self.warn(node, "this deployment is built but not applied in the script (no apply=True or .apply(); "
                            "`prefect deployment apply` did it); it is imported as the deployment it describes",
                      "apply")
        if args.get("is_schedule_active") is False:
            args["__inactive__"] = True
        for key in args:
            if key not in ("flow", "name", "work_pool_name", "work_queue_name", "infrastructure", "infra_overrides",
                           "job_variables", "storage", "path", "entrypoint", "schedule", "schedules", "apply",
                           "is_schedule_active", "skip_upload", "load_existing", "output", "__applied__",
                           "__inactive__", "triggers", "concurrency_limit", *_SAME_KEY):
                self.warn(node, f"'{key}' is not converted: the manifest has no such setting", "unknown")

    def infrastructure(self, block: Obj) -> tuple[str | None, dict, dict]:
        """A Prefect 2 infrastructure block or Prefect 1 run config: pool type, resources and job variables."""
        pool_type = POOL_TYPE.get(block.kind)
        if block.loaded is not None:
            self.warn(block.node, f"{block.kind} block '{block.loaded}' is read from the Prefect server when the "
                                  "script runs; its image, cpu, memory and other settings are not in the code: set "
                                  "them as resources and job_variables", "block")
            return pool_type, {}, {}
        args = {k: v for k, v in block.args.items() if k not in ("labels",)}
        resources: dict = {}
        cpu, memory = args.pop("cpu", None), args.pop("memory", None)
        cpu_request, memory_request = args.pop("cpu_request", None), args.pop("memory_request", None)
        cpu_limit, memory_limit = args.pop("cpu_limit", None), args.pop("memory_limit", None)
        unit = args.pop("memory_unit", None)
        for what, value in (("cpu", cpu), ("memory", memory), ("cpu_request", cpu_request),
                            ("memory_request", memory_request), ("cpu_limit", cpu_limit),
                            ("memory_limit", memory_limit)):
            if isinstance(value, Unknown):
                self.i.unknown(value, what)
        def known(value):
            return None if isinstance(value, Unknown) else value

        cpu, memory = known(cpu), known(memory)
        if pool_type == "ecs":
            if cpu is not None:
                vcpu = _cpu_units(cpu)
                if vcpu is None:
                    self.warn(block.node, f"cpu '{cpu}' is not CPU units or 'N vcpu'; it is left out", "resources")
                else:
                    resources["cpu"] = _number(vcpu)
            if memory is not None:
                mib = _mib(memory)
                if mib is None:
                    self.warn(block.node, f"memory '{memory}' is not MiB or 'N GB'; it is left out", "resources")
                else:
                    resources["memory"] = _memory_text(mib)
        elif pool_type in ("cloud-run", "cloud-run-v2"):
            if cpu is not None:
                resources["cpu"] = cpu
            if memory is not None:
                suffix = {"G": "G", "Gi": "Gi", "M": "M", "Mi": "Mi"}.get(str(known(unit) or "G"), "G")
                resources["memory"] = f"{memory}{suffix}"
        elif pool_type == "kubernetes":
            request_cpu, request_memory = known(cpu_request), known(memory_request)
            limit_cpu, limit_memory = known(cpu_limit), known(memory_limit)
            if request_cpu or limit_cpu:
                resources["cpu"] = request_cpu or limit_cpu
            if request_memory or limit_memory:
                resources["memory"] = request_memory or limit_memory
            if (request_cpu and limit_cpu and request_cpu != limit_cpu) or \
                    (request_memory and limit_memory and request_memory != limit_memory):
                self.warn(block.node, "cpu/memory requests and limits differ; resources sets both to the request "
                                      "(set cpu_limit/memory_limit in job_variables to keep them apart)", "resources")
        elif pool_type == "azure-container-instance":
            if cpu is not None:
                resources["cpu"] = cpu
            if memory is not None:
                resources["memory"] = f"{memory}G"
        elif cpu is not None or memory is not None:
            self.warn(block.node, f"cpu/memory of {block.kind} are not converted: a {pool_type or 'this'} pool has "
                                  "no such setting", "resources")
        if isinstance(resources.get("cpu"), str) and re.fullmatch(r"[0-9.]+", resources["cpu"]):
            resources["cpu"] = _number(float(resources["cpu"]))
        same = SAME_VARIABLE.get(pool_type or "", ())
        variables: dict = {}
        for key, value in args.items():
            if key in same:
                value = self.known(value, block.node, f"{block.kind} {key}")
                if value is not None:
                    variables[key] = value
            elif key in ("stream_output", "auto_deregister_task_definition", "name", "run_task_kwargs"):
                continue
            else:
                self.warn(block.node, f"{block.kind} '{key}' is not converted: set what it did in job_variables "
                                      "or the pool's base job template", "infrastructure")
        if pool_type == "docker" and memory is not None and "mem_limit" not in variables:
            variables["mem_limit"] = memory
        return pool_type, resources, variables

    def storage(self, storage, node) -> dict | None:
        if isinstance(storage, Unknown):
            self.i.unknown(storage, "the storage")
            return None
        if not isinstance(storage, Obj):
            return None
        if storage.loaded is not None:
            self.warn(storage.node, f"{storage.kind} block '{storage.loaded}' holds where the code is, on the Prefect "
                                    "server: build the code into the image (`image:` with dockerfile: auto and the "
                                    "image the runs use as its base), or clone it with code.git", "storage")
            return None
        kind, args = storage.kind, storage.args
        if kind in ("GitHub", "GitHubRepository", "GitRepository", "Git", "GitLab", "GitLabRepository"):
            repository = args.get("repository", args.get("repository_url", args.get("url", args.get("repo"))))
            if isinstance(repository, str) and kind == "GitHub" and "://" not in repository and "@" not in repository:
                repository = f"https://github.com/{repository}.git"  # Prefect 1's GitHub(repo="owner/name")
            if not isinstance(repository, str):
                self.warn(storage.node, f"{kind} storage has no repository the import can read", "storage")
                return None
            git: dict = {"repository": str(repository)}
            ref = args.get("reference", args.get("ref", args.get("branch")))
            if isinstance(ref, str):
                git["ref"] = str(ref)
            if any(k in args for k in ("access_token", "credentials", "access_token_secret")):
                self.warn(storage.node, "the git credentials are not converted: name a Prefect block or an "
                                        "environment variable in code.git.credentials (a token never belongs in a "
                                        "manifest)", "secret")
            return {"git": git}
        if kind in ("Local", "LocalFileSystem", "Module"):
            return None
        if kind == "Docker":
            return None  # Prefect 1's Docker storage is the image: see prefect1
        self.warn(storage.node, f"{kind} storage (code uploaded to object storage) is not a source `code:` reads: "
                                "build the code into the image (`image:` with dockerfile: auto and the image the "
                                "runs use as its base), or clone it with code.git; runs then need no storage block",
                  "storage")
        return None

    # schedules and triggers --------------------------------------------------------------------------
    def schedules(self, args: dict, node) -> list:
        out = []
        inactive = args.get("__inactive__") or args.get("set_schedule_active") is False
        for key in ("cron", "interval", "rrule"):
            value = args.get(key)
            if value is None:
                continue
            for one in value if isinstance(value, (list, tuple)) else [value]:
                one = self.known(one, node, key)
                if one is not None:
                    schedule = {key: one}
                    if isinstance(args.get("timezone"), str):
                        schedule["timezone"] = args["timezone"]
                    out.append(schedule)
        given = []
        if args.get("schedule") is not None:
            given.append(args["schedule"])
        if isinstance(args.get("schedules"), (list, tuple)):
            given.extend(args["schedules"])
        elif isinstance(args.get("schedules"), Unknown):
            self.i.unknown(args["schedules"], "the schedules")
        for schedule in given:
            out.extend(self.schedule(schedule, node))
        if inactive:
            for schedule in out:
                schedule["active"] = False
        return out

    def schedule(self, schedule, node) -> list[dict]:
        if isinstance(schedule, Unknown):
            self.i.unknown(schedule, "a schedule")
            return []
        if isinstance(schedule, str):
            return [{"cron": schedule}]
        if isinstance(schedule, dict):
            return [schedule]
        if not isinstance(schedule, Obj):
            self.warn(node, "a schedule is left out: it is not a schedule the import reads", "schedule")
            return []
        kind, args, positional = schedule.kind, schedule.args, schedule.positional
        if kind in ("DeploymentScheduleCreate", "MinimalDeploymentSchedule"):
            inner = self.schedule(args.get("schedule"), node)
            for one in inner:
                if args.get("active") is False:
                    one["active"] = False
                if isinstance(args.get("parameters"), dict):
                    one["parameters"] = args["parameters"]
            return inner
        if kind == "Schedule":  # Prefect 1: a list of clocks
            clocks = args.get("clocks", positional[0] if positional else [])
            return [one for clock in (clocks if isinstance(clocks, list) else [clocks])
                    for one in self.schedule(clock, node)]
        out: dict = {}
        if kind in ("CronSchedule", "Cron", "CronClock"):
            out["cron"] = args.get("cron", positional[0] if positional else None)
        elif kind in ("IntervalSchedule", "Interval", "IntervalClock"):
            out["interval"] = args.get("interval", positional[0] if positional else None)
        elif kind in ("RRuleSchedule", "RRule", "RRuleClock"):
            out["rrule"] = args.get("rrule", positional[0] if positional else None)
        anchor = args.get("anchor_date", args.get("start_date"))
        if anchor is not None:
            out["anchor_date"] = anchor
            if getattr(anchor, "zone", None) and args.get("timezone") is None:
                out["timezone"] = anchor.zone  # Prefect takes a schedule's time zone from its anchor's
        if kind == "Interval" and len(positional) > 1:
            out["anchor_date"] = positional[1]
        timezone = args.get("timezone", positional[1] if kind == "Cron" and len(positional) > 1 else None)
        if timezone is not None:
            out["timezone"] = timezone
        if args.get("day_or") is not None:
            out["day_or"] = args["day_or"]
        if args.get("active") is False:
            out["active"] = False
        parameters = args.get("parameters", args.get("parameter_defaults"))
        if parameters:
            out["parameters"] = parameters
        if args.get("slug") is not None:
            out["slug"] = args["slug"]
        for key in args:
            if key not in ("cron", "interval", "rrule", "anchor_date", "start_date", "timezone", "day_or", "active",
                           "parameters", "parameter_defaults", "slug"):
                self.warn(schedule.node, f"schedule '{key}' is not converted", "schedule")
        kept = self.known(out, schedule.node, "the schedule")
        if kind.endswith("Clock") and "anchor_date" in kept and "interval" not in kept:
            del kept["anchor_date"]  # a cron clock's start date only delays its first run
        return [kept] if any(k in kept for k in ("cron", "interval", "rrule")) else []

    def trigger(self, trigger, node) -> dict | None:
        if isinstance(trigger, Unknown):
            self.i.unknown(trigger, "a trigger")
            return None
        if isinstance(trigger, dict):
            return trigger
        if not isinstance(trigger, Obj) or trigger.kind not in TRIGGERS:
            self.warn(node, "a trigger is left out: it is not a trigger the import reads", "trigger")
            return None
        out = {"type": TRIGGERS[trigger.kind]}
        for key, value in trigger.args.items():
            if key not in _TRIGGER_KEYS:
                self.warn(trigger.node, f"trigger '{key}' is not converted", "trigger")
                continue
            if isinstance(value, (set, frozenset)):
                value = sorted(value)
            value = self.known(value, trigger.node, f"trigger {key}")
            if value is not None:
                out[key] = value
        return out

    # Prefect 1 ---------------------------------------------------------------------------------------
    def prefect1(self, registration: Registration) -> tuple[str, dict] | None:
        flow: Flow1 = registration.flow
        node, args = registration.node, registration.args
        function = re.sub(r"\W+", "_", flow.name.strip().lower()).strip("_") or "flow"
        if not function[0].isalpha():
            function = f"flow_{function}"
        file = flow.file or self.i.path
        out: dict = {"name": flow.name, "entrypoint": f"{_relative(file, self.i.root)}:{function}"}
        here = file == self.i.path  # or a flow imported from the project: said at the call that registers it
        self.warn(flow.node if here else node, f"a Prefect 1 flow (`Flow(...)`) is written in Prefect 3 as a function "
                                               f"decorated with @flow: the manifest names '{function}' in "
                                               f"{'this file' if here else _relative(file, self.i.root)} (write it, "
                                               f"calling your tasks, with @flow(name=\"{flow.name}\"))", "prefect1")
        run_config = flow.settings.get("run_config")
        labels = []
        pool_type = None
        if isinstance(run_config, Obj):
            pool_type, resources, variables = self.infrastructure(run_config)
            run_labels = run_config.args.get("labels")
            labels += [str(x) for x in run_labels] if isinstance(run_labels, (list, tuple)) else []
            if resources:
                out["resources"] = resources
            if variables:
                out["job_variables"] = variables
        elif isinstance(run_config, Unknown):
            self.i.unknown(run_config, "the run config")
        register_labels = args.get("labels")
        if isinstance(register_labels, (list, tuple)):
            labels += [str(x) for x in register_labels if not isinstance(x, Unknown)]
        elif isinstance(register_labels, Unknown):
            self.i.unknown(register_labels, "the agent labels")
        labels = list(dict.fromkeys(labels))
        if labels:
            pool = "-".join(labels)
            self.warn(node, f"agent labels {labels} chose the agent that ran this flow; in Prefect 3 a worker polls a "
                            f"work pool: the deployment goes to the pool '{pool}'"
                            f"{f' (type {pool_type})' if pool_type else ''}; create it or name your pool", "agent")
            out["work_pool"] = {"name": pool, "type": pool_type} if pool_type else pool
        else:
            self.warn(node, "no agent labels: set work_pool in the manifest", "work-pool")
        storage = flow.settings.get("storage")
        if isinstance(storage, Obj) and storage.kind == "Docker":
            registry, image = storage.args.get("registry_url"), storage.args.get("image_name")
            if isinstance(image, str):
                repository = f"{str(registry).rstrip('/')}/{image}" if isinstance(registry, str) else image
                self.image = {"repository": str(repository), "dockerfile": storage.args.get("dockerfile") or "auto"}
                if isinstance(storage.args.get("base_image"), str) and self.image["dockerfile"] == "auto":
                    self.image["base"] = str(storage.args["base_image"])
                if storage.args.get("python_dependencies"):
                    self.warn(storage.node, "python_dependencies are not converted: list them in requirements.txt, "
                                            "which dockerfile: auto installs", "storage")
                out.get("job_variables", {}).pop("image", None)
        elif storage is not None:
            code = self.storage(storage, node)
            if code:
                out["code"] = code
        schedule = flow.settings.get("schedule")
        if schedule is not None:
            schedules = self.schedule(schedule, node)
            if args.get("set_schedule_active") is False:
                for one in schedules:
                    one["active"] = False
            if schedules:
                out["schedules"] = schedules
        project = args.get("project_name")
        if isinstance(project, Deferred):
            self.warn(node, f"the project '{project}' is read from the environment when the script runs: each value "
                            "it takes is an environment of the manifest; this one is written as environment "
                            f"'{self.environment}' (import with -e NAME for another)", "project")
        project = project if isinstance(project, str) and not isinstance(project, Deferred) else None
        if isinstance(args.get("project_name"), Unknown):
            self.i.unknown(args["project_name"], "the project")
        return (project or self.environment), out


@dataclass
class Result:
    manifest: dict
    warnings: list[Problem]
    root: Path
    variables: list[str]


def convert(path: Path, *, environment: str = "prod", root: Path | None = None) -> Result:
    """The manifest a deploy script's registrations make, its entrypoints relative to `root` (default: the
    current folder when the script is inside it, as `python path/deploy.py` run here makes them, else the
    script's folder). Raises ValueError for a file that is not Python, or one larger than any real script."""
    path = path.resolve()
    if root is None:  # Prefect makes entrypoints relative to the folder the script runs in: here, if it is inside
        here = Path.cwd().resolve()
        root = here if _inside(path, here) else path.parent
    root = root.resolve()
    shown = _shown(path)
    tree = read_tree(path, shown)
    warnings: list[Problem] = []
    registrations: list[Registration] = []
    interpreter = _Interpreter(path, root, warnings, registrations)
    interpreter.shown = shown
    try:
        try:
            interpreter.run(tree.body, interpreter.scope)
        except _Return:
            pass
        interpreter.uncalled(tree)
    except RecursionError:
        raise ValueError(str(Problem(interpreter.shown, 1, 1, "nested too deeply to read", "import-file-size"))) from None
    registered = {id(r.flow.node) for r in registrations if r.generation == 1}
    imported = [names.get(v.name) for v in interpreter.scope.values() if isinstance(v, Lazy)
                for names in [interpreter.modules.get(v.file)] if isinstance(names, dict)]  # modules the file read
    for flow1 in interpreter.flows1 + [f for f in imported if isinstance(f, Flow1)]:  # Prefect 1's CLI registered a file's flows: `prefect register -p flows/`
        if id(flow1.node) not in registered:
            registered.add(id(flow1.node))
            interpreter.warn(flow1.node if flow1.file == interpreter.path else _FIRST_LINE,
                             f"flow '{flow1.name}' is not registered in this file (`prefect register "
                                         "--project NAME -p FILE`, Prefect 1's CLI, did it): imported as that registers "
                                         f"it, in environment '{environment}' (-e NAME for another)", "prefect1-cli")
            registrations.append(Registration(1, Flow1(flow1.name, flow1.node, dict(flow1.settings), flow1.file), {},
                                              flow1.node if flow1.file == interpreter.path else _FIRST_LINE))
    for spec in interpreter.built:  # applied later with `prefect deployment apply`: the deployment it describes
        if not spec.args.get("__applied__") and isinstance(spec.flow, Flow3):
            registrations.append(Registration(2, spec.flow, spec.args, spec.node))
    if len(registrations) > MAX_DEPLOYMENTS:
        raise ValueError(str(Problem(interpreter.shown, 1, 1, f"more than {MAX_DEPLOYMENTS} deployments; import a "
                                                              "smaller script", "import-file-size")))
    converter = _Converter(interpreter, environment)
    by_environment: dict[str, list[dict]] = {}
    flows_of: dict[tuple[str, str], str] = {}  # (environment, name) -> the entrypoint that has it
    for registration in registrations:
        converted = converter.deployment(registration)
        if converted is not None:
            env, deployment = converted
            _unique_name(env, deployment, flows_of, registration.node, interpreter)
            by_environment.setdefault(env, []).append(deployment)
    if not by_environment:
        warnings.append(Problem(interpreter.shown, 1, 1, "no deployment is registered here (flow.deploy, deploy(), "
                                "serve(), Deployment.build_from_flow, flow.register); there is nothing to convert",
                                "import-empty", severity="warning"))
    project, environments = _environments(list(by_environment), root.name, environment)
    manifest = assemble(project, {environments[e]: d for e, d in by_environment.items()} or {environment: []},
                        converter.image)
    text = repr(manifest)
    variables = sorted(set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)))  # those with no default
    return Result(manifest, sorted(warnings), root, variables)


def _unique_name(env: str, deployment: dict, flows_of: dict, node: ast.AST, interpreter: _Interpreter) -> None:
    """Prefect names a deployment within its flow (`etl/prod`, `report/prod`); a manifest's names are unique. A name
    another flow's deployment already has gets the flow's function after it, said at the call."""
    name, entrypoint = deployment["name"], deployment["entrypoint"]
    if flows_of.setdefault((env, name), entrypoint) == entrypoint:
        return  # the same flow's deployment again: the later one wins, as on the server
    function = entrypoint.rpartition(":")[2].replace("_", "-")
    renamed, n = f"{name}-{function}", 2
    while flows_of.get((env, renamed), entrypoint) != entrypoint:
        renamed, n = f"{name}-{function}-{n}", n + 1
    flows_of[(env, renamed)] = entrypoint
    interpreter.warn(node, f"'{name}' is also the name of a deployment of {flows_of[(env, name)]}; Prefect names a "
                           f"deployment within its flow, a manifest's names are unique: this one of {entrypoint} is "
                           f"'{renamed}' (registered under that name; rename it as you like)", "name")
    deployment["name"] = renamed


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "flows"


def _environments(names: list[str], folder: str, default: str) -> tuple[str, dict[str, str]]:
    """The project and each environment's name. Prefect 1 projects (`etl-dev`, `etl-prod`) become one project
    and its environments; one project is the project, in the environment asked for."""
    if len(names) <= 1:
        only = names[0] if names else default
        return (_slug(only) if only != default else _slug(folder)), {only: default}
    slugs = [_slug(n) for n in names]
    parts = [s.split("-") for s in slugs]
    common = []
    for words in zip(*parts):
        if len(set(words)) != 1:
            break
        common.append(words[0])
    rest = [s.split("-")[len(common):] for s in slugs]
    suffix = []
    for words in zip(*[r[::-1] for r in rest]):
        if len(set(words)) != 1:
            break
        suffix.insert(0, words[0])
    middle = ["-".join(r[:len(r) - len(suffix)]) or "default" for r in rest]
    project = "-".join(common + suffix) or _slug(folder)
    return project, dict(zip(names, middle))


def assemble(project: str, by_environment: dict[str, list[dict]], image: dict | None) -> dict:
    """One manifest: a deployment registered in several environments is one entry with what differs under its
    `environments`; a pool every deployment of an environment uses is written once, in the environment."""
    manifest: dict = {"version": 1, "project": project}
    if image:
        manifest["image"] = image
    environments: dict = {env: {} for env in by_environment}
    for env, deployments in by_environment.items():
        for key in ("work_pool", "work_queue"):
            values = [d.get(key) for d in deployments]
            if deployments and all(v is not None and v == values[0] for v in values):
                environments[env][key] = values[0]
                for d in deployments:
                    del d[key]
    order: list[str] = []
    per_name: dict[str, dict[str, dict]] = {}
    for env, deployments in by_environment.items():
        for d in deployments:
            if d["name"] not in per_name:
                order.append(d["name"])
            per_name.setdefault(d["name"], {})[env] = d  # the later of one name wins, as on the server
    deployments = []
    for name in order:
        versions = per_name[name]
        if len(by_environment) == 1:
            deployments.append(next(iter(versions.values())))
            continue
        keys = list(dict.fromkeys(k for d in versions.values() for k in d))
        common = {k: next(iter(versions.values()))[k] for k in keys
                  if len(versions) == len(by_environment) and all(k in d and d[k] == next(iter(versions.values()))[k]
                                                                  for d in versions.values())}
        entry = dict(common)
        overrides = {}
        for env in by_environment:
            if env not in versions:
                overrides[env] = {"enabled": False}
                continue
            differs = {k: v for k, v in versions[env].items() if k not in common}
            if differs:
                overrides[env] = differs
        if len(versions) < len(by_environment):
            entry.setdefault("entrypoint", next(iter(versions.values()))["entrypoint"])
            for env in versions:
                overrides.get(env, {}).pop("entrypoint", None)
        entry["name"] = name
        entry = {"name": name, **{k: v for k, v in entry.items() if k != "name"}}
        if overrides:
            entry["environments"] = {k: v for k, v in overrides.items() if v}
        deployments.append(entry)
    manifest["environments"] = environments
    manifest["deployments"] = deployments
    return manifest


HEADER = ("# yaml-language-server: $schema=https://raw.githubusercontent.com/org/flow-register/v1/schemas/"
          "manifest.schema.json\n# Converted from {source} by `flow-register import` (read, never run).\n")


def run(script: str, output: str | None, environment: str, environ: Mapping[str, str]) -> int:
    """`flow-register import deploy.py`: convert, report what was left out, write, and validate what was written."""
    import sys

    from register.importer import dump, write_and_validate
    from register.problems import Exit, UsageError

    source = Path(script)
    target = Path(output) if output else None
    if target is not None and target.exists():
        raise UsageError(f"{target} exists; remove it or give another -o")
    if not source.is_file():
        raise UsageError(f"{source}: no such file")
    try:
        result = convert(source, environment=environment)
    except ValueError as error:
        print(error, file=sys.stderr)
        return Exit.INVALID
    text = HEADER.format(source=source.name) + dump(result.manifest, {})
    return write_and_validate(text, target, result.root, result.variables, result.warnings, read_by="the script",
                              environ=environ)
