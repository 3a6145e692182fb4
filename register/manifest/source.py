"""Load YAML into plain Python values while remembering the line and column of every node.

PyYAML composes a node tree with marks; we walk it ourselves so that duplicate keys are
reported (PyYAML silently keeps the last one) and every value can be found again by its path,
e.g. `("deployments", 0, "resources", "cpu")`.

Any bytes are safe to load: a wrong encoding, a file too large, nesting too deep, an alias that
contains itself or expands without bound all end in a problem at their position, never an exception
and never more than a bounded amount of time and memory.

Two things beyond plain YAML happen here, because only here is each value's position known:
- `${NAME}` and `${NAME:-default}` in a string take the value of an environment variable (`$${`
  writes a literal `${`). Prefect's own `{{ ... }}` templates are left alone for Prefect.
- `!null` is the value null itself, where a plain `null` would remove an inherited setting.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from register.problems import Problem

Path_ = tuple  # a path into the document: keys and list indexes

MAX_BYTES = 1024 * 1024  # a manifest of hundreds of deployments is about 100 KB; parsing 1 MiB takes seconds
MAX_DEPTH = 64  # manifests nest about 8 deep; Python's recursion would fail near 300
MAX_ALIASED_VALUES = 20_000  # values reached again through aliases: bounds a "billion laughs" file
NULL_TAG = "!null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VARIABLE = re.compile(r"\$(\$?)\{([^}]*)(\}?)")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|AUTH|CREDENTIAL|PRIVATE", re.I)
_REFERENCE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.S)


@dataclass
class Source:
    """A loaded YAML document: its data and where each part of it was written."""

    file: str
    data: object = None
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # path -> (line, col)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # path -> position of the key
    problems: list[Problem] = field(default_factory=list)
    nulls: set[Path_] = field(default_factory=set)  # where `!null` was written: null meant as a value
    # `${NAME}` with NAME not set and no default: name -> [(path, (line, col))] of each use. Not problems
    # yet: whether one is an error depends on the environment being checked (checks.unset_variables).
    unset: dict[str, list[tuple[Path_, tuple[int, int]]]] = field(default_factory=dict)
    # A string that took an environment variable, as written (`${NAME}`), by path: a block's secret field
    # must be exactly one reference, never a literal (register/manifest/checks.py, `_blocks`).
    written: dict[Path_, str] = field(default_factory=dict)

    def where(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """The position of `path`, or of its nearest written ancestor when it was not written."""
        path = tuple(path)
        while path:
            found = (self.keys if key else self.values).get(path) or self.values.get(path)
            if found:
                return found
            path = path[:-1]
        return self.values.get((), (1, 1))

    def problem(self, path: Path_, message: str, rule: str, *, key: bool = False,
                severity: str = "error") -> Problem:
        line, col = self.where(path, key=key)
        return Problem(self.file, line, col, message, rule, severity)


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Loader(yaml.SafeLoader):
    """PyYAML's composer recurses once per level of nesting, and its scanner's time grows with the square
    of the nesting of `[` and `{`: stop both long before they hurt."""

    depth = 0

    def fetch_flow_collection_start(self, TokenClass):
        if self.flow_level >= MAX_DEPTH:
            raise yaml.scanner.ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Stop(Exception):
    """The document cannot be read on (a bound was reached); the problem is already recorded."""


class _Walker:
    def __init__(self, source: Source, loader: _Loader, environ: Mapping[str, str]):
        self.source = source
        self.loader = loader
        self.environ = environ
        self.walked: set[int] = set()
        self.inside: set[int] = set()  # the nodes being walked: the current node's ancestors
        self.merging: set[int] = set()  # the mappings being merged into the current one
        self.aliased = 0
        self.pairs: dict[int, dict] = {}  # a mapping node's resolved keys, once per node however often aliased

    def report(self, at: tuple[int, int], message: str, rule: str) -> None:
        self.source.problems.append(Problem(self.source.file, *at, message, rule))

    def value(self, node: yaml.Node, path: Path_):
        if id(node) in self.inside:  # an alias to a node that contains it
            self.report(self.source.where(path, key=True), "this alias refers to a node that contains it "
                                                           "(a recursive alias); YAML data must be a tree", "yaml-alias")
            return None
        if len(path) > MAX_DEPTH:
            self.report(_position(node), f"nested deeper than {MAX_DEPTH} levels (through aliases)", "yaml-depth")
            return None
        if id(node) in self.walked:
            self.aliased += 1
            if self.aliased > MAX_ALIASED_VALUES:
                self.report(_position(node), f"aliases expand this document to more than {MAX_ALIASED_VALUES} "
                                             "values; write the repeated parts once", "yaml-alias")
                raise _Stop
        self.walked.add(id(node))
        self.source.values[path] = _position(node)
        if isinstance(node, yaml.MappingNode):
            self.inside.add(id(node))
            result: dict = {}
            for key, (key_node, value_node) in self.mapping(node).items():
                self.source.keys[path + (key,)] = _position(key_node)
                result[key] = self.value(value_node, path + (key,))
            self.inside.discard(id(node))
            return result
        if isinstance(node, yaml.SequenceNode):
            self.inside.add(id(node))
            result = [self.value(item, path + (i,)) for i, item in enumerate(node.value)]
            self.inside.discard(id(node))
            return result
        if node.tag == NULL_TAG:
            if node.value not in ("", "null", "~"):
                self.report(_position(node), f"'!null' is the value null and takes nothing after it; "
                                             f"got '{node.value}'", "yaml-null")
            self.source.nulls.add(path)
            return None
        try:
            value = self.loader.construct_object(node, deep=True)
        except ValueError:  # Python reads at most 4300 digits of an integer
            self.report(_position(node), f"a number of {len(node.value)} characters is far beyond any value a "
                                         "setting takes", "number")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.report(_position(node), f"'{node.value}' is not a finite number; the Prefect API (JSON) has no "
                                         "NaN or infinity", "number")
            return node.value  # kept as written: what the schema then says at this place is not repeated
        if isinstance(value, str) and "${" in value:
            self.source.written[path] = value
            return self.substitute(node, value, path)
        return value

    def mapping(self, node: yaml.MappingNode) -> dict:
        """key -> (key node, value node). Merged keys (`<<: *anchor`) come first, the earlier of two merged
        mappings wins, and a key written in the mapping itself overrides a merged one (as YAML says);
        a key written twice in the mapping itself is a duplicate."""
        if id(node) in self.pairs:
            return self.pairs[id(node)]
        merged: dict = {}
        written: dict = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for merged_node in sources:
                    if not isinstance(merged_node, yaml.MappingNode):
                        self.report(_position(merged_node), "'<<' merges mappings: give it an alias of a mapping "
                                                            "(<<: *name) or a list of them", "yaml-merge")
                    elif id(merged_node) in self.inside or id(merged_node) in self.merging:
                        self.report(_position(key_node), "this merge refers to a mapping that contains it "
                                                         "(a recursive alias)", "yaml-alias")
                    else:
                        self.merging.add(id(merged_node))
                        for key, pair in self.mapping(merged_node).items():
                            merged.setdefault(key, pair)
                        self.merging.discard(id(merged_node))
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == NULL_TAG:
                self.report(_position(key_node), "a mapping key must be a plain string", "yaml-key")
                continue
            try:
                key = self.loader.construct_object(key_node)
            except ValueError:  # an integer of more than 4300 digits
                key = None
            if key is None:
                self.report(_position(key_node), "a mapping key must be a plain string", "yaml-key")
                continue
            key = key if isinstance(key, str) else str(key)
            if key in written:
                first_line, _ = _position(written[key][0])
                self.report(_position(key_node), f"duplicate key '{key}' (first set on line {first_line}); "
                                                 "remove one of them", "duplicate-key")
                continue
            written[key] = (key_node, value_node)
        self.pairs[id(node)] = result = {**merged, **written}
        return result

    def substitute(self, node: yaml.ScalarNode, text: str, path: Path_ = ()):
        """`${NAME}` and `${NAME:-default}` from the environment; `$${` is a literal `${`. A plain
        (unquoted) scalar is typed after substitution, so `limit: ${LIMIT}` can be a number."""
        unset: list[str] = []
        malformed: list[str] = []
        secrets: list[str] = []

        def replace(match: re.Match) -> str:
            escaped, inner, closed = match.groups()
            if escaped:
                return "${" + inner + closed
            reference = _REFERENCE.fullmatch(inner) if closed else None
            if reference is None:
                malformed.append(match.group(0))
                return match.group(0)
            name, default = reference.groups()
            if _SECRET_NAME.search(name):
                secrets.append(name)
            if self.environ.get(name):
                return self.environ[name]
            if default is not None:
                return default
            if name not in self.environ:
                unset.append(name)
            return ""

        result = _VARIABLE.sub(replace, text)
        for bad in malformed:
            self.report(_position(node), f"'{bad}' is not an environment variable reference; write ${{NAME}} or "
                                         f"${{NAME:-default}} (or $${{ for a literal '${{')", "environment-variable")
        for name in unset:
            self.source.unset.setdefault(name, []).append((path, _position(node)))
        for name in secrets if path[:1] != ("blocks",) else ():  # a block's secret field is where it belongs
            self.source.problems.append(Problem(
                self.source.file, *_position(node), f"environment variable '{name}' looks like a secret: its value "
                "would be stored in the deployment as plain text for anyone who can read it; give runs the secret "
                "with a Prefect Secret block ('{{ prefect.blocks.secret.NAME }}')", "environment-secret", "warning"))
        if node.style is None and result != text:
            tag = self.loader.resolve(yaml.ScalarNode, result, (True, False))
            try:
                return self.loader.construct_object(yaml.ScalarNode(tag, result, node.start_mark, node.end_mark))
            except ValueError:
                self.report(_position(node), f"a number of {len(result)} characters is far beyond any value a "
                                             "setting takes", "number")
                return None
        return result


def _line_col(text: str, index: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def parse(text: str, file: str, environ: Mapping[str, str] | None = None) -> Source:
    """Parse YAML text. Syntax errors become problems at their position, never exceptions.
    `environ`: the environment variables `${NAME}` may use (none when not given)."""
    source = Source(file)
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            source.problems.append(Problem(file, 1, 1, "the file is empty; a manifest needs at least "
                                                       "'version', 'project', 'environments' and "
                                                       "'deployments'", "yaml-empty"))
            return source
        source.data = _Walker(source, loader, environ or {}).value(node, ())
    except _Stop:
        source.data = None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = error.problem or "invalid YAML"
        if error.context and error.context_mark and error.context_mark.line != mark.line:
            message += f" ({error.context} that starts on line {error.context_mark.line + 1})"
        elif error.context:
            message = f"{error.context}: {message}"
        if error.context == "while scanning a tag" and error.problem.endswith(("found '}'", "found ','", "found ']'")):
            message += " (in { } and [ ], a tag such as !null needs a space after it: {key: !null })"
        source.problems.append(Problem(file, line, col, f"YAML syntax: {message}", "yaml-syntax"))
    except yaml.reader.ReaderError as error:
        line, col = _line_col(text, error.position)
        source.problems.append(Problem(file, line, col, f"the character U+{error.character:04X} is not allowed in "
                                                        "YAML; remove it", "yaml-syntax"))
    except yaml.YAMLError as error:
        source.problems.append(Problem(file, 1, 1, f"YAML: {error}", "yaml-syntax"))
    finally:
        if loader is not None:
            loader.dispose()
    return source


def decode(raw: bytes, file: str) -> tuple[str | None, Problem | None]:
    """The text of a manifest: UTF-8, with or without a byte order mark. Anything else is a problem."""
    for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                      (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if raw.startswith(bom):
            return None, Problem(file, 1, 1, f"the file is encoded as {name} (it starts with a {name} byte order "
                                             "mark); save it as UTF-8", "encoding")
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        return None, Problem(file, line, 1, f"line {line} contains a NUL byte: the file is not UTF-8 text (UTF-16 "
                                            "without a byte order mark?); save it as UTF-8", "encoding")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as error:
        line_start = raw.rfind(b"\n", 0, error.start) + 1
        line = raw.count(b"\n", 0, error.start) + 1
        col = len(raw[line_start:error.start].decode("utf-8", "replace")) + 1
        return None, Problem(file, line, col, f"byte 0x{raw[error.start]:02X} on line {line} is not UTF-8; "
                                              "save the file as UTF-8", "encoding")


def load(path: str | Path, environ: Mapping[str, str] | None = None) -> Source:
    path = Path(path)
    with path.open("rb") as file:
        raw = file.read(MAX_BYTES + 1)  # never more: the size is all a message about a huge file needs
    if len(raw) > MAX_BYTES:
        return Source(str(path), problems=[Problem(
            str(path), 1, 1, f"the file is {path.stat().st_size / 1024 / 1024:.1f} MiB; a manifest may be at most "
                             f"{MAX_BYTES // 1024 // 1024} MiB", "file-size")])
    text, problem = decode(raw, str(path))
    if problem is not None:
        return Source(str(path), problems=[problem])
    return parse(text, str(path), environ)
