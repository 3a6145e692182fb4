"""Values of annotations and defaults, interpreted from the AST instead of executed.

What can be known without running the project's code is known: literals, containers, arithmetic,
f-strings, constants defined in the flow's file or in the project's own modules (read, never imported),
names from the standard library, pydantic and installed packages (importing those runs no user code),
calls of side-effect-free constructors (`date(2024, 1, 1)`, `Decimal("1.5")`, `Field(...)`), and the
project's own classes (pydantic models, enums, dataclasses) rebuilt from their bodies when those are
annotations, constant values and methods. Anything else raises `Unknown`, whose reason goes into a warning.
"""

from __future__ import annotations

import ast
import importlib
import operator
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from register.flows.source import Binding, External, Module, Project

_LIMIT = 100_000  # the longest string or container an expression may build (a default, not a data set)


class Unknown(Exception):
    """A value that cannot be known without running code; the message says why."""


@dataclass(frozen=True)
class ModuleRef:
    module: Module | External


_BUILTINS = {t.__name__: t for t in (int, float, str, bool, bytes, complex, list, dict, tuple, set, frozenset,
                                     object, type)}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.BitOr: operator.or_,
           ast.BitAnd: operator.and_, ast.BitXor: operator.xor, ast.LShift: operator.lshift,
           ast.RShift: operator.rshift}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}
# Methods that make a class's JSON schema in code: such a class cannot be rebuilt from its annotations.
_SCHEMA_HOOKS = {"__get_pydantic_core_schema__", "__get_pydantic_json_schema__", "__get_validators__",
                 "__modify_schema__", "model_json_schema", "__init_subclass__", "__class_getitem__"}
# pydantic's modules whose callables build values and field descriptions; not its functions that take types
# (conlist, TypeAdapter, create_model): a type given as a string there is evaluated with eval().
_MODULES_OF_SAFE_CALLS = ("pydantic.fields", "pydantic.config", "pydantic.networks", "pydantic.types")
_TAKE_TYPES = {"conlist", "conset", "confrozenset"}


def _safe_calls() -> set:
    import dataclasses
    import datetime
    import decimal
    import enum
    import ipaddress
    import pathlib
    import uuid

    return {*_BUILTINS.values(), datetime.date, datetime.datetime, datetime.time, datetime.timedelta,
            datetime.timezone, decimal.Decimal, uuid.UUID, pathlib.Path, pathlib.PurePath, pathlib.PurePosixPath,
            pathlib.PureWindowsPath, pathlib.PosixPath, enum.auto, dataclasses.field, ipaddress.ip_address,
            ipaddress.ip_network, ipaddress.IPv4Address, ipaddress.IPv6Address,
            datetime.date.fromisoformat, datetime.datetime.fromisoformat, datetime.time.fromisoformat,
            datetime.datetime.strptime}


class Evaluator:
    """Evaluates expressions of one project's modules; remembers what it built, so a class used by two
    flows is one class."""

    def __init__(self, project: Project):
        self.project = project
        self._names: dict[tuple, Any] = {}
        self._busy: set[tuple] = set()
        # What a value's reader should know: a fallback used instead of what `prefect deploy` may get.
        self.notes: list[str] = []
        self._notes_of: dict[tuple, list[str]] = {}
        self._constructible: set[type] = set()  # rebuilt classes without methods: no validator to skip
        self._safe = _safe_calls()

    # names

    def name(self, module: Module, name: str) -> Any:
        key = (module.path, name)
        if key not in self._names:
            if key in self._busy:
                if any(b.kind == "class" for b in module.bindings.get(name, ())):
                    return name  # a class naming itself (a tree of models): a forward reference, see _class
                raise Unknown(f"'{name}' refers to itself")
            outer, self.notes = self.notes, []
            self._busy.add(key)
            try:
                self._names[key] = self._lookup(module, name)
            except Unknown as error:
                self._names[key] = error
            finally:
                self._busy.discard(key)
                self._notes_of[key], self.notes = self.notes, outer
        self.notes += self._notes_of[key]
        value = self._names[key]
        if isinstance(value, Unknown):
            raise value
        return value

    def _lookup(self, module: Module, name: str) -> Any:
        alternatives = module.bindings.get(name)
        if not alternatives:
            for star in module.stars:  # `from x import *`: a name of x's
                target = self.project.module(star)
                if isinstance(target, External) and target.reason:
                    raise Unknown(f"'{name}' may come from '{star}' (import *), {target.reason}")
                if isinstance(target, Module) and name in target.bindings:
                    return self.name(target, name)
                try:
                    return self.attribute(ModuleRef(target), name)
                except Unknown:
                    continue
            if name in _BUILTINS:
                return _BUILTINS[name]
            raise Unknown(f"'{name}' is not defined at the top level of {self._where(module)}")
        first = None
        for binding in alternatives:
            if not self._holds(module, name, binding):
                continue
            try:
                value = self._binding(module, name, binding)
            except Unknown as error:
                first = first or error
                continue
            if binding.fallback and first is not None:
                self.notes.append(f"'{name}' is the fallback of the except branch at {self._where(module)}:"
                                  f"{binding.fallback}, because {first}")
            return value
        raise first or Unknown(f"'{name}' is not defined at the top level of {self._where(module)}")

    def _holds(self, module: Module, name: str, binding: Binding) -> bool:
        for test, truth in binding.conditions:
            try:
                if bool(self.value(module, test)) != truth:
                    return False
            except Unknown as reason:
                raise Unknown(f"'{name}' depends on the condition '{_short(test)}' at {self._where(module)}:"
                              f"{test.lineno}: {reason}") from None
        return True

    def _binding(self, module: Module, name: str, binding: Binding) -> Any:
        if binding.kind == "import":
            return ModuleRef(self.project.module(binding.module))
        if binding.kind == "from":
            return self.attribute(ModuleRef(self.project.module(binding.module)), binding.name)
        if binding.kind == "value":
            return self.value(module, binding.value)
        if binding.kind == "class":
            return self._class(module, binding.node, binding.node.name)
        raise Unknown(f"'{name}' is a function defined at {self._where(module)}:{binding.node.lineno}, "
                      "and functions are not run")

    def attribute(self, ref: ModuleRef, name: str) -> Any:
        target = ref.module
        if isinstance(target, Module):
            if name in target.bindings:
                return self.name(target, name)
            submodule = self.project.module(f"{target.name}.{name}")
            if isinstance(submodule, Module):
                return ModuleRef(submodule)
            return self.name(target, name)  # from its own `import *`s, or not defined
        if target.reason:
            raise Unknown(f"'{name}' comes from '{target.name}', {target.reason}")
        try:
            module = importlib.import_module(target.name)
        except Exception as error:  # noqa: BLE001 - an installed package that cannot be imported here
            raise Unknown(f"'{name}' comes from '{target.name}', which fails to import: {error}") from None
        if hasattr(module, name):
            return getattr(module, name)
        try:
            return importlib.import_module(f"{target.name}.{name}")
        except ImportError:
            raise Unknown(f"'{target.name}' has no '{name}'") from None

    def _where(self, module: Module) -> str:
        return _relative(module.path, self.project.root)

    # expressions

    def annotation(self, module: Module, node: ast.expr) -> Any:
        """A type annotation: a string is read as an expression, as `inspect.signature(eval_str=True)` reads
        it (by eval()); a string left after that would be eval()'d by pydantic, so only a class's own name
        (see name()) may remain."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value.strip(), mode="eval").body
            except SyntaxError:
                raise Unknown(f"the annotation '{node.value}' is not a Python expression") from None
        value = self.value(module, node)
        if isinstance(value, str) and not (value.isidentifier() and isinstance(node, ast.Name)):
            raise Unknown(f"the annotation '{_short(node)}' is a string within a string")
        return value

    def _type_argument(self, module: Module, node: ast.expr) -> Any:
        if isinstance(node, ast.List):  # Callable[[A, B], C]
            return [self._type_argument(module, item) for item in node.elts]
        return self.annotation(module, node)

    def value(self, module: Module, node: ast.expr) -> Any:
        try:
            value = self._value(module, node)
        except (Unknown, RecursionError):
            raise
        except Exception as error:  # noqa: BLE001 - `{[1]: 2}`, `[*3]`: Python would fail too
            raise Unknown(f"'{_short(node)}' fails: {type(error).__name__}: {error}") from None
        if isinstance(value, ModuleRef):
            raise Unknown(f"'{ast.unparse(node)}' is a module")
        return value

    def _value(self, module: Module, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.name(module, node.id)
        if isinstance(node, ast.Attribute):
            owner = self._value(module, node.value)
            if isinstance(owner, ModuleRef):
                return self.attribute(owner, node.attr)
            if node.attr.startswith("__"):
                raise Unknown(f"'{ast.unparse(node)}' is not read")
            return self._apply(node, getattr, owner, node.attr)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](self._items(module, node.elts))
        if isinstance(node, ast.Dict):
            result = {}
            for key, item in zip(node.keys, node.values):
                if key is None:
                    result.update(self.value(module, item))
                else:
                    result[self.value(module, key)] = self.value(module, item)
            return result
        if isinstance(node, ast.Subscript):
            owner = self.value(module, node.value)
            if isinstance(owner, (dict, list, tuple, str, bytes)) or _is_literal(owner):
                index = self.value(module, node.slice)
            else:  # type arguments: strings in them are read here, never left for typing or pydantic to eval()
                items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                arguments = [self._type_argument(module, item) if i == 0 or not _is_annotated(owner)
                             else self.value(module, item) for i, item in enumerate(items)]
                index = tuple(arguments) if isinstance(node.slice, ast.Tuple) else arguments[0]
            return self._apply(node, operator.getitem, owner, index)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.value(module, node.left), self.value(module, node.right)
            _check_size(node, node.op, left, right)
            return self._apply(node, _BINARY[type(node.op)], left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return self._apply(node, _UNARY[type(node.op)], self.value(module, node.operand))
        if isinstance(node, ast.Compare):
            left = self.value(module, node.left)
            for op, comparator in zip(node.ops, node.comparators):
                right = self.value(module, comparator)
                if not self._apply(node, _COMPARE[type(op)], left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.BoolOp):  # `a or b` is a or b, evaluated no further than Python would
            for item in node.values:
                value = self.value(module, item)
                if bool(value) == isinstance(node.op, ast.Or):
                    return value
            return value
        if isinstance(node, ast.IfExp):
            return self.value(module, node.body if self.value(module, node.test) else node.orelse)
        if isinstance(node, ast.JoinedStr):
            parts = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    item = self.value(module, part.value)
                    item = {115: str, 114: repr, 97: ascii}.get(part.conversion, lambda v: v)(item)
                    spec = self.value(module, part.format_spec) if part.format_spec else ""
                    parts.append(format(item, spec))
                else:
                    parts.append(part.value)
            return _checked(node, "".join(parts))
        if isinstance(node, ast.Call):
            return self._call(module, node)
        raise Unknown(f"'{_short(node)}' is an expression that only running the code can evaluate")

    def _items(self, module: Module, nodes: list[ast.expr]) -> list:
        """The values of a display's or a call's items, `*starred` ones spread."""
        items = []
        for item in nodes:
            if isinstance(item, ast.Starred):
                items.extend(self.value(module, item.value))
            else:
                items.append(self.value(module, item))
        return items

    def _call(self, module: Module, node: ast.Call) -> Any:
        function = self.value(module, node.func)
        if not self._may_call(function):
            raise Unknown(f"'{_short(node)}' calls {ast.unparse(node.func)}(), and flow-register runs no code")
        args = self._items(module, node.args)
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                kwargs.update(self.value(module, keyword.value))
            else:
                kwargs[keyword.arg] = self.value(module, keyword.value)
        return self._apply(node, function, *args, **kwargs)

    def _may_call(self, function: Any) -> bool:
        import enum

        try:
            if function in self._safe or function in self._constructible:
                return True
        except TypeError:  # unhashable
            return False
        if isinstance(function, enum.EnumMeta):
            return True  # Mode("full"): a member by value
        module = getattr(function, "__module__", None) or ""
        return ((module in _MODULES_OF_SAFE_CALLS and getattr(function, "__name__", "") not in _TAKE_TYPES)
                or module.split(".")[0] == "annotated_types")

    @staticmethod
    def _apply(node: ast.AST, function, *args, **kwargs) -> Any:
        try:
            return _checked(node, function(*args, **kwargs))
        except Unknown:
            raise
        except Exception as error:  # noqa: BLE001 - the expression would fail for Python too
            raise Unknown(f"'{_short(node)}' fails: {type(error).__name__}: {error}") from None

    # classes

    def _class(self, module: Module, node: ast.ClassDef, qualname: str) -> type:
        """The project's class rebuilt from its body: bases, annotations, constant values and nested classes
        (methods do not shape a validation schema, except the hooks in _SCHEMA_HOOKS)."""
        where = f"class '{qualname}' ({self._where(module)}:{node.lineno})"
        bases = tuple(self.value(module, b) for b in node.bases)
        keywords = {}
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg == "metaclass":
                raise Unknown(f"{where} sets its class keywords in code")
            keywords[keyword.arg] = self.value(module, keyword.value)
        decorators = [self._decorator(module, d, where) for d in node.decorator_list]
        docstring = node.body[0].value.value if _is_docstring(node.body[0]) else None
        annotations: dict[str, Any] = {}
        values: list[tuple[str, Any]] = []
        methods = False
        for statement in node.body:
            if isinstance(statement, ast.Pass) or (isinstance(statement, ast.Expr)
                                                   and isinstance(statement.value, ast.Constant)):
                continue
            if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                annotations[statement.target.id] = self._part(where, lambda: self.annotation(module, statement.annotation))
                if statement.value is not None:
                    values.append((statement.target.id, self._part(where, lambda: self.value(module, statement.value))))
            elif isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                    and isinstance(statement.targets[0], ast.Name):
                values.append((statement.targets[0].id, self._part(where, lambda: self.value(module, statement.value))))
            elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods = True
                if statement.name in _SCHEMA_HOOKS:
                    raise Unknown(f"{where} defines {statement.name}, which shapes its schema in code")
            elif isinstance(statement, ast.ClassDef):
                values.append((statement.name, self._class(module, statement, f"{qualname}.{statement.name}")))
            else:
                raise Unknown(f"{where} runs code in its body (line {statement.lineno})")

        def body(namespace):
            namespace["__module__"] = module.name
            namespace["__qualname__"] = qualname
            if docstring is not None:
                namespace["__doc__"] = docstring
            if annotations:
                namespace["__annotations__"] = annotations
            for name, value in values:
                namespace[name] = value

        try:
            cls = types.new_class(node.name, bases, keywords, body)
            for decorator in reversed(decorators):
                cls = decorator(cls)
        except Exception as error:  # noqa: BLE001 - as Python would fail to define it
            raise Unknown(f"{where} cannot be defined: {type(error).__name__}: {error}") from None
        if getattr(cls, "__pydantic_complete__", True) is False:
            try:  # resolve the class's references to itself, as Python's module namespace would
                cls.model_rebuild(_types_namespace={node.name: cls})
            except Exception as error:  # noqa: BLE001 - pydantic's message says which name
                raise Unknown(f"{where} refers to names that cannot be resolved: {error}") from None
        if not methods and all(b in self._constructible for b in bases if getattr(b, "__module__", "") == module.name):
            self._constructible.add(cls)
        return cls

    @staticmethod
    def _part(where: str, evaluate) -> Any:
        try:
            return evaluate()
        except Unknown as error:
            raise Unknown(f"{where}: {error}") from None

    def _decorator(self, module: Module, node: ast.expr, where: str):
        import dataclasses
        import enum

        target = node.func if isinstance(node, ast.Call) else node
        try:
            function = self.value(module, target)
        except Unknown:
            function = None
        factories = {dataclasses.dataclass}
        try:
            from pydantic.dataclasses import dataclass as pydantic_dataclass
            factories.add(pydantic_dataclass)
        except ImportError:  # pragma: no cover - pydantic is a dependency
            pass
        if function in factories:
            return self._call(module, node) if isinstance(node, ast.Call) else function
        if function is enum.unique and not isinstance(node, ast.Call):
            return function
        raise Unknown(f"{where} has the decorator @{ast.unparse(node)}, and flow-register runs no code")


def _is_literal(owner: Any) -> bool:
    import typing

    return owner is typing.Literal or getattr(owner, "_name", None) == "Literal"


def _is_annotated(owner: Any) -> bool:
    import typing

    return owner is typing.Annotated or getattr(owner, "_name", None) == "Annotated"


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _check_size(node: ast.AST, op: ast.operator, left, right) -> None:
    """Refuse arithmetic that would build something huge (`"x" * 10**9`, `2 ** 10**9`) before doing it."""
    if isinstance(op, (ast.Pow, ast.LShift)) and isinstance(right, int) and abs(right) > 10_000:
        raise Unknown(f"'{_short(node)}' is too large to evaluate")
    if isinstance(op, ast.Mult):
        sized, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(count, int) and hasattr(sized, "__len__") and len(sized) * count > _LIMIT:
            raise Unknown(f"'{_short(node)}' is too large to evaluate")


def _checked(node: ast.AST, value: Any) -> Any:
    if isinstance(value, (str, bytes, list, tuple, dict, set)) and len(value) > _LIMIT:
        raise Unknown(f"'{_short(node)}' is too large to evaluate")
    return value


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
