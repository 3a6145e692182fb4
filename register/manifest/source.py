"""Load YAML into plain Python values while remembering the line and column of every node.

PyYAML composes a node tree with marks; we walk it ourselves so that duplicate keys are
reported (PyYAML silently keeps the last one) and every value can be found again by its path,
e.g. `("deployments", 0, "resources", "cpu")`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from register.problems import Problem

Path_ = tuple  # a path into the document: keys and list indexes


@dataclass
class Source:
    """A loaded YAML document: its data and where each part of it was written."""

    file: str
    data: object = None
    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # path -> (line, col)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)  # path -> position of the key
    problems: list[Problem] = field(default_factory=list)

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


class _Walker:
    def __init__(self, source: Source, loader: yaml.SafeLoader):
        self.source = source
        self.loader = loader

    def value(self, node: yaml.Node, path: Path_):
        self.source.values[path] = _position(node)
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
            result: dict = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    line, col = _position(key_node)
                    self.source.problems.append(Problem(
                        self.source.file, line, col, "a mapping key must be a plain string", "yaml-key"))
                    continue
                key = str(key) if not isinstance(key, str) else key
                if key in result:
                    line, col = _position(key_node)
                    first_line, _ = self.source.keys[path + (key,)]
                    self.source.problems.append(Problem(
                        self.source.file, line, col,
                        f"duplicate key '{key}' (first set on line {first_line}); remove one of them",
                        "duplicate-key"))
                    continue
                self.source.keys[path + (key,)] = _position(key_node)
                result[key] = self.value(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def parse(text: str, file: str) -> Source:
    """Parse YAML text. Syntax errors become problems at their position, never exceptions."""
    source = Source(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            source.problems.append(Problem(file, 1, 1, "the file is empty; a manifest needs at least "
                                                       "'version', 'project', 'environments' and "
                                                       "'deployments'", "yaml-empty"))
            return source
        source.data = _Walker(source, loader).value(node, ())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = error.problem or "invalid YAML"
        if error.context and error.context_mark and error.context_mark.line != mark.line:
            message += f" ({error.context} that starts on line {error.context_mark.line + 1})"
        elif error.context:
            message = f"{error.context}: {message}"
        source.problems.append(Problem(file, line, col, f"YAML syntax: {message}", "yaml-syntax"))
    except yaml.YAMLError as error:
        source.problems.append(Problem(file, 1, 1, f"YAML: {error}", "yaml-syntax"))
    finally:
        loader.dispose()
    return source


def load(path: str | Path) -> Source:
    path = Path(path)
    return parse(path.read_text(encoding="utf-8"), str(path))
