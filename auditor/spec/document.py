"""Load a spec file as plain data, remembering the line and column of every value.

YAML is loaded safely: the file is first composed into nodes (nothing constructed) and
any tag outside YAML's core schema (``!!python/object``, ``!custom``) is an error; only
then is it constructed by ruamel's safe loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from auditor.errors import Loc, SpecError, SpecIssue

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}

Mark = tuple[int, int]  # 1-based line, column


@dataclass
class SpecDocument:
    """A spec file's text, its plain data and where each value sits."""

    path: Path
    text: str
    data: Any
    values: dict[Loc, Mark] = field(default_factory=dict)
    keys: dict[Loc, Mark] = field(default_factory=dict)
    #: Paths whose value came from ``--set`` on the command line.
    overridden: set[Loc] = field(default_factory=set)

    @property
    def display_path(self) -> str:
        """The path as the user would write it (relative to the cwd when below it)."""
        try:
            return str(self.path.relative_to(Path.cwd()))
        except ValueError:
            return str(self.path)

    def mark(self, loc: Loc, *, key: bool = False) -> Mark | None:
        """Line and column of ``loc``, or of its nearest ancestor present in the file."""
        loc = tuple(loc)
        if key and loc in self.keys:
            return self.keys[loc]
        while loc:
            if loc in self.values:
                return self.values[loc]
            if loc in self.keys:
                return self.keys[loc]
            loc = loc[:-1]
        return self.values.get(())

    def issue(self, loc: Loc, message: str, *, key: bool = False) -> SpecIssue:
        loc = tuple(loc)
        if any(loc[: len(o)] == o for o in self.overridden):
            message += " (value set with --set)"
        mark = self.mark(loc, key=key)
        line, col = mark if mark else (None, None)
        return SpecIssue(message, tuple(loc), self.display_path, line, col)

    def locate(self, error: SpecError) -> SpecError:
        """Fill in file, line and column of issues raised without them."""
        located = [i if i.line is not None else self.issue(i.loc, i.message) for i in error.issues]
        return SpecError(located)


def _walk(node: Node, loc: Loc, doc: SpecDocument, problems: list[SpecIssue]) -> None:
    mark = (node.start_mark.line + 1, node.start_mark.column + 1)
    doc.values[loc] = mark
    tag = str(node.tag)
    if tag not in _ALLOWED_TAGS:
        shown = tag.replace(_CORE, "!!")
        problems.append(
            SpecIssue(
                f"YAML tag '{shown}' is not allowed: a spec holds plain data only",
                loc,
                doc.display_path,
                *mark,
            )
        )
        return
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else str(key_node.value)
            child = (*loc, key)
            doc.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, child, doc, problems)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), doc, problems)


def _yaml_error(exc: MarkedYAMLError, display: str) -> SpecIssue:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem and "duplicate key" in exc.problem:
        problem = exc.problem.split(" with value")[0]
    line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
    return SpecIssue(f"YAML syntax error: {problem}", (), display, line, col)


def parse_document(text: str, path: Path) -> SpecDocument:
    """Parse spec text; raise ``SpecError`` for YAML errors and disallowed tags."""
    doc = SpecDocument(path=path, text=text, data=None)
    yaml = YAML(typ="safe", pure=True)
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        raise SpecError([_yaml_error(exc, doc.display_path)]) from None
    if root is None:
        raise SpecError([SpecIssue("the spec file is empty", (), doc.display_path, 1, 1)])
    problems: list[SpecIssue] = []
    _walk(root, (), doc, problems)
    if problems:
        raise SpecError(problems)
    try:
        doc.data = yaml.load(text)
    except MarkedYAMLError as exc:
        raise SpecError([_yaml_error(exc, doc.display_path)]) from None
    if not isinstance(doc.data, dict):
        raise SpecError([doc.issue((), "the spec must be a mapping of keys to values")])
    return doc


def load_document(path: Path) -> SpecDocument:
    """Read and parse a spec file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([SpecIssue(f"spec file {path} does not exist")]) from None
    except IsADirectoryError:
        raise SpecError([SpecIssue(f"spec path {path} is a folder, not a file")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([SpecIssue(f"spec file {path} is not UTF-8 text ({exc.reason})")]) from None
    return parse_document(text, path.resolve())
