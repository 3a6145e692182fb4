"""Values of annotations and defaults, interpreted from the AST instead of executed.

What can be known without running the project's code is known: literals, containers, arithmetic,
f-strings, comprehensions, a few pure builtins (`list(range(20))`, `sorted`, `len`, `dict(a=1)`) and
methods of literal strings, numbers and containers, constants defined in the flow's file or in the
project's own modules (read, never imported), names from the modules of source.TYPE_MODULES (nothing else
is imported), calls of side-effect-free constructors (`date(2024, 1, 1)`, `Decimal("1.5")`, `Field(...)`),
and the project's own classes (pydantic models, enums, dataclasses) rebuilt from their bodies when those
are annotations, constant values and methods. Anything else raises `Unknown`, whose reason goes into a
warning.

The work is bounded, because flow source is a pull request's: every value's size (digits, length, items
counted as JSON would repeat them, nesting) is checked before or as it is built, and one flow's evaluation
has a budget of steps and of time. A bound exceeded is `Unknown` too.
"""

from __future__ import annotations

import ast
import enum
import importlib
import operator
import re
import string
import sys
import sysconfig
import time
import types
from dataclasses import dataclass
from functools import lru_cache
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from register.flows.source import FACTS, TYPE_MODULES, Binding, External, Module, Project, short

MAX_LENGTH = 100_000  # the longest string or container an expression may build (a default, not a data set)
MAX_WEIGHT = 1_000_000  # items and characters of one value, shared parts counted each time (as JSON repeats them)
MAX_BITS = 14_000  # an integer's size: about 4200 digits, within what Python converts to text
MAX_WIDTH = 10_000  # a width or precision in a format specification
MAX_NESTING = 100  # expressions within expressions, and containers within containers
MAX_STEPS = 1_000_000  # expressions evaluated, loop iterations and items measured, per flow
MAX_SECONDS = 10.0  # per flow


class Unknown(Exception):
    """A value that cannot be known without running code; the message says why."""


@dataclass(frozen=True)
class ModuleRef:
    module: Module | External


class Iterator(tuple):
    """What map(), zip(), a generator expression... give: their items, taken eagerly (all are bounded)."""


_BUILTINS = {t.__name__: t for t in (int, float, str, bool, bytes, complex, list, dict, tuple, set, frozenset,
                                     object, type, range)}
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

# Methods of literal values that may be called: pure, and bounded by their inputs (those that can grow a
# string beyond its inputs are checked by _GROWS first). Nothing that reads files, the clock or the
# environment, and nothing that changes a value in place (a constant may be shared by several defaults).
_PURE = {
    str: {"capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
          "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
          "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
          "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition",
          "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill"},
    bytes: {"count", "decode", "endswith", "find", "hex", "index", "lower", "lstrip", "rstrip", "split",
            "startswith", "strip", "upper"},
    int: {"bit_length", "conjugate", "real", "imag", "numerator", "denominator"},
    float: {"conjugate", "is_integer", "real", "imag"},
    list: {"count", "index", "copy"},
    tuple: {"count", "index"},
    dict: {"copy", "get", "items", "keys", "values"},
    set: {"copy", "difference", "intersection", "isdisjoint", "issubset", "issuperset", "symmetric_difference",
          "union"},
    range: {"count", "index", "start", "stop", "step"},
}
_PURE[frozenset] = _PURE[set]
_PURE[bool] = _PURE[int]
_DATES = {"year", "month", "day", "hour", "minute", "second", "microsecond", "days", "seconds", "microseconds",
          "isoformat", "strftime", "date", "time", "weekday", "isoweekday", "total_seconds", "replace"}
_PATHS = {"name", "stem", "suffix", "suffixes", "parent", "parts", "as_posix", "joinpath", "with_name",
          "with_suffix", "with_stem"}
_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))


@lru_cache(maxsize=1)
def _trusted_folders() -> tuple[Path, ...]:
    """Where the interpreter's own modules and installed packages live: a module of TYPE_MODULES is
    imported only from there, never from a folder of the checkout on sys.path that shadows it."""
    import site

    paths = sysconfig.get_paths()
    found = [paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")] + site.getsitepackages()
    return tuple(dict.fromkeys(Path(p).resolve() for p in found if p))


def _trusted(path: str) -> bool:
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(folder) for folder in _trusted_folders())


_CHECKED: dict[str, types.ModuleType] = {}


def type_module(name: str) -> types.ModuleType:
    """The module `name` of TYPE_MODULES, imported (if it is not yet) with sys.path reduced to the
    interpreter's own folders."""
    if name in _CHECKED:
        return _CHECKED[name]
    if name not in TYPE_MODULES:
        raise Unknown(f"'{name}' is a module flow-register does not import")
    module = sys.modules.get(name)
    if module is None:
        saved = sys.path[:]
        sys.path[:] = [p for p in saved if p and _trusted(p)]
        try:
            module = importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - an optional one missing here
            raise Unknown(f"'{name}' fails to import: {error}") from None
        finally:
            sys.path[:] = saved
    origin = getattr(module, "__file__", None)
    if origin and not _trusted(origin):
        raise Unknown(f"'{name}' is shadowed by {origin}, which flow-register does not import")
    _CHECKED[name] = module
    return module


def _safe_calls() -> set:
    import dataclasses
    import datetime
    import ipaddress
    import pathlib
    import uuid

    return {*(_BUILTINS[n] for n in ("int", "float", "str", "bool", "bytes", "complex", "list", "dict", "tuple",
                                     "set", "frozenset", "object", "range")),
            datetime.date, datetime.datetime, datetime.time, datetime.timedelta,
            datetime.timezone, Decimal, uuid.UUID, pathlib.Path, pathlib.PurePath, pathlib.PurePosixPath,
            pathlib.PureWindowsPath, pathlib.PosixPath, enum.auto, dataclasses.field, ipaddress.ip_address,
            ipaddress.ip_network, ipaddress.IPv4Address, ipaddress.IPv6Address,
            datetime.date.fromisoformat, datetime.datetime.fromisoformat, datetime.time.fromisoformat,
            datetime.datetime.strptime}


class Evaluator:
    """Evaluates expressions of one project's modules; remembers what it built, so a class used by two
    flows is one class. One evaluator reads one flow: its budget of steps and time is that flow's."""

    def __init__(self, project: Project, deadline: float | None = None):
        self.project = project
        self._names: dict[tuple, Any] = {}
        self._busy: set[tuple] = set()
        # What a value's reader should know: a fallback used instead of what `prefect deploy` may get.
        self.notes: list[str] = []
        self._notes_of: dict[tuple, list[str]] = {}
        self._constructible: set[type] = set()  # rebuilt classes without methods: no validator to skip
        self._safe = _safe_calls()
        self._scope: dict[str, Any] = {}  # a comprehension's variables
        self._depth = 0
        self._steps = 0
        self._deadline = time.monotonic() + MAX_SECONDS if deadline is None else deadline
        self._sizes: dict[int, tuple[Any, int, int]] = {}  # id -> (value, weight, nesting) of containers seen

    # budget

    def _tick(self, steps: int = 1) -> None:
        self._steps += steps
        if self._steps > MAX_STEPS:
            raise Unknown(f"evaluating this flow's signature takes more than {MAX_STEPS:,} steps")
        if (self._steps % 100 < steps or steps > 100) and time.monotonic() > self._deadline:
            raise Unknown(f"evaluating the signatures of this flow's file takes more than {MAX_SECONDS:.0f} s")

    # names

    def name(self, module: Module, name: str) -> Any:
        key = (module.path, name)
        if key not in self._names:
            if key in self._busy:
                if any(b.kind == "class" for b in module.bindings.get(name, ())):
                    return name  # a class naming itself (a tree of models): a forward reference, see _class
                raise Unknown(f"'{name}' refers to itself")
            outer, self.notes = self.notes, []
            scope, self._scope = self._scope, {}  # a module's names never see a comprehension's variables
            self._busy.add(key)
            try:
                self._names[key] = self._lookup(module, name)
            except Unknown as error:
                self._names[key] = error
            finally:
                self._busy.discard(key)
                self._scope = scope
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
            if name in _FUNCTIONS:
                return _FUNCTIONS[name]
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
        if target.name in FACTS:
            if name not in FACTS[target.name]:
                raise Unknown(f"'{target.name}.{name}' is not read (of '{target.name}', only "
                              f"{', '.join(sorted(FACTS[target.name]))})")
            return getattr(sys.modules[target.name], name)
        if name.startswith("_"):
            raise Unknown(f"'{target.name}.{name}' is not read")
        module = type_module(target.name)
        try:
            value = getattr(module, name)
        except AttributeError:
            submodule = f"{target.name}.{name}"
            if submodule in TYPE_MODULES:
                return ModuleRef(External(submodule))
            raise Unknown(f"'{target.name}' has no '{name}'") from None
        except Exception as error:  # noqa: BLE001 - a lazy name that fails (pydantic's moved names)
            raise Unknown(f"'{target.name}.{name}' fails: {type(error).__name__}: {error}") from None
        if isinstance(value, types.ModuleType):  # `typing.sys`: only the listed modules are reached
            if value.__name__ in TYPE_MODULES:
                return ModuleRef(External(value.__name__))
            raise Unknown(f"'{target.name}.{name}' is the module '{value.__name__}', {_not_imported()}")
        return value

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
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                raise Unknown(f"the annotation '{_short(node)}' is not a Python expression") from None
        value = self.value(module, node)
        if isinstance(value, str) and not (value.isidentifier() and isinstance(node, ast.Name)):
            raise Unknown(f"the annotation '{_short(node)}' is a string within a string")
        return value

    def _type_argument(self, module: Module, node: ast.expr) -> Any:
        if isinstance(node, ast.List):  # Callable[[A, B], C]
            return [self._type_argument(module, item) for item in node.elts]
        return self.annotation(module, node)

    def value(self, module: Module, node: ast.expr) -> Any:
        self._tick()
        if self._depth >= MAX_NESTING:
            raise Unknown(f"it nests more than {MAX_NESTING} expressions deep")
        self._depth += 1
        try:
            value = self._value(module, node)
        except Unknown:
            raise
        except RecursionError:
            raise Unknown("it is nested too deeply") from None
        except Exception as error:  # noqa: BLE001 - `{[1]: 2}`, `[*3]`: Python would fail too
            raise Unknown(f"'{_short(node)}' fails: {type(error).__name__}: {error}") from None
        finally:
            self._depth -= 1
        if isinstance(value, ModuleRef):
            raise Unknown(f"'{_short(node)}' is a module")
        return self._bounded(node, value)

    def _value(self, module: Module, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self._scope:
                return self._scope[node.id]
            return self.name(module, node.id)
        if isinstance(node, ast.Attribute):
            owner = self._value(module, node.value)
            if isinstance(owner, ModuleRef):
                return self.attribute(owner, node.attr)
            return self._attribute_of(node, owner, node.attr)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](self._items(module, node.elts))
        if isinstance(node, ast.Dict):
            result = {}
            for key, item in zip(node.keys, node.values):
                if key is None:
                    result.update(self._mapping(node, self.value(module, item)))
                else:
                    result[self.value(module, key)] = self.value(module, item)
                if len(result) > MAX_LENGTH:
                    raise Unknown(f"'{_short(node)}' is too large to evaluate")
            return result
        if isinstance(node, ast.Slice):
            return slice(*(None if part is None else self.value(module, part)
                           for part in (node.lower, node.upper, node.step)))
        if isinstance(node, ast.Subscript):
            owner = self.value(module, node.value)
            if isinstance(owner, (dict, list, tuple, str, bytes, range)) or _is_literal(owner):
                index = self.value(module, node.slice)
            else:  # type arguments: strings in them are read here, never left for typing or pydantic to eval()
                items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                arguments = [self._type_argument(module, item) if i == 0 or not _is_annotated(owner)
                             else self.value(module, item) for i, item in enumerate(items)]
                index = tuple(arguments) if isinstance(node.slice, ast.Tuple) else arguments[0]
            return self._apply(node, operator.getitem, owner, index)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.value(module, node.left), self.value(module, node.right)
            _check_operation(node, node.op, left, right)
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
                    parts.append(_format(node, item, spec))
                else:
                    parts.append(part.value)
                if sum(map(len, parts)) > MAX_LENGTH:
                    raise Unknown(f"'{_short(node)}' is too large to evaluate")
            return "".join(parts)
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            return self._comprehension(module, node)
        if isinstance(node, ast.Call):
            return self._call(module, node)
        raise Unknown(f"'{_short(node)}' is an expression that only running the code can evaluate")

    def _attribute_of(self, node: ast.Attribute, owner: Any, name: str) -> Any:
        """An attribute of a value: of a class (an enum's member, a nested class, a constructor such as
        date.fromisoformat, called only if allowed), of an enum member, or a pure method of a literal."""
        if name.startswith("_") or isinstance(owner, types.ModuleType):
            raise Unknown(f"'{_short(node)}' is not read")
        if isinstance(owner, type):
            return self._apply(node, getattr, owner, name)
        if isinstance(owner, enum.Enum) and name in ("name", "value"):
            return getattr(owner, name)
        allowed = _PURE.get(type(owner), ())
        if not allowed:
            import datetime

            if isinstance(owner, (datetime.date, datetime.time, datetime.timedelta)):
                allowed = _DATES
            elif isinstance(owner, PurePath):
                allowed = _PATHS
        if name not in allowed:
            raise Unknown(f"'{_short(node)}' is not read: flow-register calls only pure methods of literal values")
        found = getattr(owner, name)
        return _Method(owner, name, found) if callable(found) else found

    def _items(self, module: Module, nodes: list[ast.expr]) -> list:
        """The values of a display's or a call's items, `*starred` ones spread."""
        items = []
        for item in nodes:
            if isinstance(item, ast.Starred):
                items.extend(_iterate(item, self.value(module, item.value)))
            else:
                items.append(self.value(module, item))
            if len(items) > MAX_LENGTH:
                raise Unknown(f"it has more than {MAX_LENGTH:,} items")
        return items

    def _mapping(self, node: ast.AST, value: Any) -> dict:
        if not isinstance(value, dict):
            raise Unknown(f"'{_short(node)}' spreads {type(value).__name__}, not a dict")
        return value

    def _comprehension(self, module: Module, node: ast.expr) -> Any:
        """A comprehension, evaluated as Python would (the first iterable outside its scope), every
        iteration counted against the flow's budget."""
        results: list = []

        def loop(index: int) -> None:
            if index == len(node.generators):
                if isinstance(node, ast.DictComp):
                    results.append((self.value(module, node.key), self.value(module, node.value)))
                else:
                    results.append(self.value(module, node.elt))
                if len(results) > MAX_LENGTH:
                    raise Unknown(f"'{_short(node)}' is too large to evaluate")
                return
            generator = node.generators[index]
            if generator.is_async:
                raise Unknown(f"'{_short(node)}' iterates asynchronously")
            for item in _iterate(generator.iter, self.value(module, generator.iter)):
                self._tick()
                _assign(generator.target, item, self._scope)
                if all(self.value(module, test) for test in generator.ifs):
                    loop(index + 1)

        outer, self._scope = self._scope, dict(self._scope)
        try:
            loop(0)
        finally:
            self._scope = outer
        if isinstance(node, ast.DictComp):
            return dict(results)
        return {ast.ListComp: list, ast.SetComp: set, ast.GeneratorExp: Iterator}[type(node)](results)

    def _call(self, module: Module, node: ast.Call) -> Any:
        function = self.value(module, node.func)
        if not self._may_call(function):
            raise Unknown(f"'{_short(node)}' calls {_short(node.func)}(), and flow-register runs no code")
        args = self._items(module, node.args)
        kwargs = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                kwargs.update(self._mapping(keyword, self.value(module, keyword.value)))
            else:
                kwargs[keyword.arg] = self.value(module, keyword.value)
        return self.call(node, function, args, kwargs)

    def call(self, node: ast.AST, function: Any, args: list, kwargs: dict) -> Any:
        """A call of a function _may_call allows, its arguments checked first where the result could be
        larger than they are."""
        self._tick()
        if isinstance(function, (_Builtin, _Method)):
            return self._apply(node, function.run, self, node, *args, **kwargs)
        if function in _CONSTRUCTORS:
            return self._apply(node, _CONSTRUCTORS[function], node, *args, **kwargs)
        if isinstance(function, enum.EnumMeta) and (len(args) != 1 or kwargs):
            raise Unknown(f"'{_short(node)}' creates an enum in code")
        return self._apply(node, function, *args, **kwargs)

    def _may_call(self, function: Any) -> bool:
        if isinstance(function, (_Builtin, _Method)):
            return True
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

    def _apply(self, node: ast.AST, function, *args, **kwargs) -> Any:
        try:
            return self._bounded(node, function(*args, **kwargs))
        except Unknown:
            raise
        except RecursionError:
            raise Unknown("it is nested too deeply") from None
        except Exception as error:  # noqa: BLE001 - the expression would fail for Python too
            raise Unknown(f"'{_short(node)}' fails: {type(error).__name__}: {error}") from None

    def _bounded(self, node: ast.AST, value: Any) -> Any:
        """`value`, when it is within the bounds of a default; else Unknown."""
        if isinstance(value, int) and value.bit_length() > MAX_BITS:
            raise Unknown(f"'{_short(node)}' is a number too large to evaluate (more than {MAX_BITS:,} bits)")
        if isinstance(value, Decimal) and value.is_finite():
            sign, digits, exponent = value.as_tuple()
            if len(digits) > MAX_WIDTH or abs(exponent) > MAX_WIDTH:
                raise Unknown(f"'{_short(node)}' is a number too large to evaluate")
        if isinstance(value, (str, bytes)) and len(value) > MAX_LENGTH:
            raise Unknown(f"'{_short(node)}' is too large to evaluate (more than {MAX_LENGTH:,} characters)")
        if isinstance(value, range):
            try:
                if len(value) > MAX_LENGTH:
                    raise OverflowError
            except OverflowError:
                raise Unknown(f"'{_short(node)}' is too large to evaluate (more than {MAX_LENGTH:,} items)") from None
        if isinstance(value, (list, tuple, set, frozenset, dict, *_VIEWS)):
            weight, nesting = self._size(node, value, 0)
            if weight > MAX_WEIGHT:
                raise Unknown(f"'{_short(node)}' is too large to evaluate (more than {MAX_WEIGHT:,} items)")
        return value

    def _size(self, node: ast.AST, value: Any, nesting: int) -> tuple[int, int]:
        """A value's weight (items and characters, each occurrence of a shared part counted) and nesting,
        remembered for containers: building a value from others costs its own items only."""
        if isinstance(value, (str, bytes)):
            return 1 + len(value) // 8, 0
        if not isinstance(value, (list, tuple, set, frozenset, dict, *_VIEWS)):
            return 1, 0
        known = self._sizes.get(id(value))
        if known is not None and known[0] is value:
            return known[1], known[2]
        if nesting >= MAX_NESTING:
            raise Unknown(f"'{_short(node)}' nests containers more than {MAX_NESTING} deep")
        if len(value) > MAX_LENGTH:
            raise Unknown(f"'{_short(node)}' is too large to evaluate (more than {MAX_LENGTH:,} items)")
        self._tick(len(value))  # measuring is work too: a comprehension of large rows measures each
        weight, deepest = 1, 0
        for item in (value.items() if isinstance(value, dict) else value):
            item_weight, item_nesting = self._size(node, item, nesting + 1)
            weight += item_weight
            deepest = max(deepest, item_nesting + 1)
            if weight > MAX_WEIGHT:
                raise Unknown(f"'{_short(node)}' is too large to evaluate (more than {MAX_WEIGHT:,} items)")
        if deepest > MAX_NESTING:  # built from parts remembered earlier, each within the bound
            raise Unknown(f"'{_short(node)}' nests containers more than {MAX_NESTING} deep")
        self._sizes[id(value)] = (value, weight, deepest)
        return weight, deepest

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


def _not_imported() -> str:
    from register.flows.source import NOT_IMPORTED

    return NOT_IMPORTED


def _is_literal(owner: Any) -> bool:
    import typing

    return owner is typing.Literal or getattr(owner, "_name", None) == "Literal"


def _is_annotated(owner: Any) -> bool:
    import typing

    return owner is typing.Annotated or getattr(owner, "_name", None) == "Annotated"


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _assign(target: ast.expr, value: Any, scope: dict) -> None:
    """A comprehension's `for` target bound as Python binds it."""
    if isinstance(target, ast.Name):
        scope[target.id] = value
    elif isinstance(target, (ast.Tuple, ast.List)) and not any(isinstance(t, ast.Starred) for t in target.elts):
        items = _iterate(target, value)
        if len(items) != len(target.elts):
            raise Unknown(f"'{_short(target)}' unpacks {len(items)} values into {len(target.elts)} names")
        for part, item in zip(target.elts, items):
            _assign(part, item, scope)
    else:
        raise Unknown(f"'{_short(target)}' is a target flow-register does not bind")


def _iterate(node: ast.AST, value: Any) -> tuple | list:
    """The items of a value that is iterated: only literal containers and bounded ranges (an object's
    own iteration, an IPv6 network's addresses, could be endless)."""
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, dict):
        return list(value)
    if isinstance(value, (str, bytes, set, frozenset, range, *_VIEWS)):
        if len(value) > MAX_LENGTH:
            raise Unknown(f"'{_short(node)}' is too large to evaluate (more than {MAX_LENGTH:,} items)")
        return list(value)
    raise Unknown(f"'{_short(node)}' iterates over {type(value).__name__}, which flow-register does not iterate")


def _too_large(node: ast.AST, size: int) -> None:
    if size > MAX_LENGTH:
        raise Unknown(f"'{_short(node)}' is too large to evaluate (more than {MAX_LENGTH:,} characters or items)")


def _check_operation(node: ast.AST, op: ast.operator, left, right) -> None:
    """Refuse arithmetic that would build something huge (`"x" * 10**9`, `(10**10000)**3000`) before doing it."""
    numbers = isinstance(left, int) and isinstance(right, int)
    if isinstance(op, ast.Pow) and numbers and right > 0 and abs(left) > 1 and left.bit_length() * right > MAX_BITS:
        raise Unknown(f"'{_short(node)}' is a number too large to evaluate (more than {MAX_BITS:,} bits)")
    if isinstance(op, ast.Pow) and isinstance(right, int) and abs(right) > MAX_BITS and not numbers:
        raise Unknown(f"'{_short(node)}' is a number too large to evaluate")
    if isinstance(op, ast.LShift) and numbers and left and left.bit_length() + right > MAX_BITS:
        raise Unknown(f"'{_short(node)}' is a number too large to evaluate (more than {MAX_BITS:,} bits)")
    if isinstance(op, ast.Mult):
        if numbers and left.bit_length() + right.bit_length() > MAX_BITS:
            raise Unknown(f"'{_short(node)}' is a number too large to evaluate (more than {MAX_BITS:,} bits)")
        sized, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(count, int) and hasattr(sized, "__len__") and not isinstance(sized, int):
            _too_large(node, len(sized) * count)
    if isinstance(op, ast.Add) and isinstance(left, (str, bytes, list, tuple)) and hasattr(right, "__len__"):
        _too_large(node, len(left) + len(right))
    if isinstance(op, ast.Mod) and isinstance(left, (str, bytes)):
        _check_percent(node, left)


# printf-style conversions: a width or precision given by `*` or above MAX_WIDTH would allocate it
_PERCENT = re.compile(rb"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


def _check_percent(node: ast.AST, template: str | bytes) -> None:
    text = template.encode("utf-8", "replace") if isinstance(template, str) else template
    for match in _PERCENT.finditer(text):
        for part in match.groups():
            if part and (part == b"*" or int(part) > MAX_WIDTH):
                raise Unknown(f"'{_short(node)}' formats with a width or precision too large to evaluate")


def _format(node: ast.AST, value: Any, spec: str) -> str:
    """format(value, spec), refused when the spec asks for a width or precision that would make it huge
    (`f"{1:>1000000000}"`)."""
    if not isinstance(spec, str):
        raise Unknown(f"'{_short(node)}' has a format specification that is not a string")
    if len(spec) > 1000 or any(int(n) > MAX_WIDTH for n in re.findall(r"\d+", spec)):
        raise Unknown(f"'{_short(node)}' formats with a width or precision too large to evaluate")
    result = format(value, spec)
    _too_large(node, len(result))
    return result


class _Formatter(string.Formatter):
    """str.format for defaults: fields by position or name only (no `{0.attr}`, `{0[key]}`), each spec
    checked by _format."""

    def __init__(self, node: ast.AST):
        self.node = node

    def get_field(self, field_name, args, kwargs):
        if not (field_name.isdigit() or field_name.isidentifier()):
            raise Unknown(f"'{_short(self.node)}' reads '{field_name}' in a format string, which is not evaluated")
        return super().get_field(field_name, args, kwargs)

    def format_field(self, value, format_spec):
        return _format(self.node, value, format_spec)


class _Method:
    """A pure method of a literal value (see _PURE), called with its arguments checked."""

    def __init__(self, owner: Any, name: str, bound):
        self.owner, self.name, self.bound = owner, name, bound

    def run(self, evaluator: Evaluator, node: ast.AST, *args, **kwargs) -> Any:
        owner, name = self.owner, self.name
        if name == "format":
            return _Formatter(node).vformat(owner, args, kwargs)
        if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
            _too_large(node, args[0])
        if name == "expandtabs":
            _too_large(node, len(owner) * max(args[0] if args else 8, 1))
        if name == "replace" and len(args) >= 2:
            old, new = args[0], args[1]
            _too_large(node, len(owner) + (len(owner) // max(len(old), 1) + 1) * len(new))
        if name == "join":
            items = _iterate(node, args[0]) if args else ()
            _too_large(node, sum(len(i) if hasattr(i, "__len__") else 1 for i in items)
                       + len(owner) * max(len(items) - 1, 0))
            return self.bound(items)
        if name == "strftime":
            return _format(node, owner, args[0] if args else "")
        if name in ("union", "intersection", "difference", "symmetric_difference", "issubset", "issuperset",
                    "isdisjoint"):
            args = tuple(_iterate(node, a) for a in args)
        return self.bound(*args, **kwargs)


class _Builtin:
    """A builtin function of those flow-register evaluates; its iterables are literal containers."""

    def __init__(self, name: str, run):
        self.name, self.function = name, run

    def run(self, evaluator: Evaluator, node: ast.AST, *args, **kwargs) -> Any:
        return self.function(evaluator, node, *args, **kwargs)

    def __repr__(self):
        return f"<builtin {self.name}>"


def _callable(evaluator: Evaluator, node: ast.AST, function: Any):
    if function is None:
        return None
    if not evaluator._may_call(function) and function not in _BUILTINS.values():
        raise Unknown(f"'{_short(node)}' would call {function!r}, and flow-register runs no code")
    return lambda *args: evaluator.call(node, function, list(args), {})


def _key(evaluator: Evaluator, node: ast.AST, kwargs: dict) -> dict:
    if "key" in kwargs:
        kwargs["key"] = _callable(evaluator, node, kwargs["key"])
    return kwargs


def _sum(evaluator, node, iterable, start=0):
    items = _iterate(node, iterable)
    if not all(isinstance(i, (int, float, complex, Decimal)) for i in (start, *items)):
        raise Unknown(f"'{_short(node)}' sums values that are not numbers")
    return sum(items, start)


def _round(evaluator, node, number, ndigits=None):
    if ndigits is not None and isinstance(ndigits, int) and abs(ndigits) > MAX_WIDTH:
        raise Unknown(f"'{_short(node)}' rounds to too many digits")  # round(1, -10**9) computes 10**10**9
    return round(number, ndigits)


def _map(evaluator, node, function, *iterables):
    function = _callable(evaluator, node, function)
    return Iterator(function(*items) for items in zip(*(_iterate(node, i) for i in iterables)))


def _filter(evaluator, node, function, iterable):
    test = _callable(evaluator, node, function) or bool
    return Iterator(item for item in _iterate(node, iterable) if test(item))


_FUNCTIONS = {name: _Builtin(name, run) for name, run in {
    "len": lambda e, n, value: len(value),
    "min": lambda e, n, *args, **kw: min(*(args if len(args) > 1 else (_iterate(n, args[0]),)), **_key(e, n, kw)),
    "max": lambda e, n, *args, **kw: max(*(args if len(args) > 1 else (_iterate(n, args[0]),)), **_key(e, n, kw)),
    "sum": _sum,
    "sorted": lambda e, n, iterable, **kw: sorted(_iterate(n, iterable), **_key(e, n, kw)),
    "reversed": lambda e, n, sequence: Iterator(reversed(_iterate(n, sequence))),
    "enumerate": lambda e, n, iterable, start=0: Iterator(enumerate(_iterate(n, iterable), start)),
    "zip": lambda e, n, *iterables, **kw: Iterator(zip(*(_iterate(n, i) for i in iterables), **kw)),
    "map": _map,
    "filter": _filter,
    "any": lambda e, n, iterable: any(_iterate(n, iterable)),
    "all": lambda e, n, iterable: all(_iterate(n, iterable)),
    "abs": lambda e, n, number: abs(number),
    "round": _round,
    "divmod": lambda e, n, a, b: divmod(a, b),
    "chr": lambda e, n, code: chr(code),
    "ord": lambda e, n, character: ord(character),
    "hex": lambda e, n, number: hex(number),
    "oct": lambda e, n, number: oct(number),
    "bin": lambda e, n, number: bin(number),
    "repr": lambda e, n, value: repr(value),
    "ascii": lambda e, n, value: ascii(value),
    "format": lambda e, n, value, spec="": _format(n, value, spec),
}.items()}


def _collection(kind):
    def construct(node, iterable=(), **kwargs):
        if kwargs:
            raise TypeError(f"{kind.__name__}() takes no keyword arguments")
        return kind(_iterate(node, iterable))
    return construct


def _dict(node, *args, **kwargs):
    if len(args) > 1:
        raise TypeError(f"dict expected at most 1 argument, got {len(args)}")
    result = dict(args[0]) if args and isinstance(args[0], dict) else dict(_iterate(node, args[0]) if args else ())
    result.update(kwargs)
    return result


def _bytes(node, source=b"", *args):
    if isinstance(source, int):
        _too_large(node, source)  # bytes(10**9): a gigabyte of zeros
        return bytes(source)
    return bytes(source if isinstance(source, (str, bytes)) else _iterate(node, source), *args)


def _str(node, *args, **kwargs):
    if len(args) == 1 and not kwargs and isinstance(args[0], (list, tuple, set, frozenset, dict)):
        _too_large(node, len(repr(args[0])))
    return str(*args, **kwargs)


_CONSTRUCTORS = {list: _collection(list), tuple: _collection(tuple), set: _collection(set),
                 frozenset: _collection(frozenset), dict: _dict, bytes: _bytes, str: _str}


def _short(node: ast.AST) -> str:
    return short(node)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
