"""Load a spec file as plain data, remembering the line and column of every value.

YAML is loaded safely: the file is first composed into nodes (nothing constructed) and
any tag outside YAML's core schema (``!!python/object``, ``!custom``) is an error; only
then is it constructed by ruamel's safe loader.

Reading is bounded: aliases may repeat at most ``MAX_ALIAS_NODES`` nodes in all (a
"billion laughs" file is refused at the alias that crosses the limit, before anything is
expanded), values nest at most ``MAX_DEPTH`` levels, and every problem in the bytes
(not UTF-8, control characters) is reported with its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.reader import Reader

from auditor.errors import Loc, SpecError, SpecIssue

_CORE = "tag:yaml.org,2002:"
_TIMESTAMP = _CORE + "timestamp"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}

Mark = tuple[int, int]  # 1-based line, column

#: Nodes that aliases may repeat in one spec, all aliases together. A spec needs a few
#: shared blocks at most; a "billion laughs" file needs billions.
MAX_ALIAS_NODES = 10_000
#: Levels of nested lists and mappings (a spec needs fewer than ten).
MAX_DEPTH = 100
#: Bytes read from a spec file at most (specs are a few KB; /dev/zero is endless).
MAX_BYTES = 4 * 1024 * 1024


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
    #: The file the text was read from, when it is not ``path`` (a run folder's copy of
    #: the spec, whose relative paths still resolve from the original's folder).
    source: Path | None = None

    @property
    def display_path(self) -> str:
        """The file the text came from as the user would write it (relative to the cwd
        when below it)."""
        return _display(self.source or self.path)

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


class _SpecYAMLError(MarkedYAMLError):
    """A YAML problem found by our own bounds; its message is shown as it is."""


class _BoundedComposer(Composer):
    """ruamel's composer, counting the nodes that aliases repeat.

    An alias makes ruamel return the anchored node itself (nothing is copied), but every
    later walk over the data (marks, validation, copies) visits it once per path; so the
    nodes each alias stands for are added up here and the spec is refused at the alias
    that crosses ``MAX_ALIAS_NODES``, and at an alias inside the collection it names.
    """

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._reset()

    def _reset(self) -> None:
        self.repeated = 0
        #: id -> (node, size): the node is held so that its id cannot be reused meanwhile.
        self._sizes: dict[int, tuple[Node, int]] = {}
        self._open: set[Any] = set()

    def compose_document(self) -> Any:
        # ruamel keeps one composer per YAML object: each document starts from nothing.
        self._reset()
        try:
            return super().compose_document()
        finally:
            self._sizes = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            if event.anchor in self._open:
                raise _SpecYAMLError(
                    problem=f"alias *{event.anchor} is inside the value it names (a recursive "
                    "structure); a spec holds plain data only",
                    problem_mark=event.start_mark,
                )
            node = super().compose_node(parent, index)
            size = _size(node, self._sizes)
            self.repeated += size
            if self.repeated > MAX_ALIAS_NODES:
                raise _SpecYAMLError(
                    problem=f"YAML aliases repeat more than {MAX_ALIAS_NODES:,} values in all "
                    f"(*{event.anchor} stands for {size:,}); write the values out instead",
                    problem_mark=event.start_mark,
                )
            return node
        anchor = getattr(event, "anchor", None)
        if anchor is None or not isinstance(event, SequenceStartEvent | MappingStartEvent):
            return super().compose_node(parent, index)
        self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.discard(anchor)


def _size(node: Node, sizes: dict[int, tuple[Node, int]]) -> int:
    """Nodes in ``node``'s tree counting every path (memoized: linear in distinct nodes)."""
    known = sizes.get(id(node))
    if known is not None:
        return known[1]
    total = 1
    if isinstance(node, MappingNode):
        total += sum(_size(k, sizes) + _size(v, sizes) for k, v in node.value)
    elif isinstance(node, SequenceNode):
        total += sum(_size(item, sizes) for item in node.value)
    sizes[id(node)] = (node, total)
    return total


class _SafeConstructor(SafeConstructor):
    """ruamel's safe constructor; a value Python refuses (an int of 5,000 digits) is a
    located YAML error instead of a bare ``ValueError``."""

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            if "integer string conversion" in str(exc):
                problem = f"a number of {len(str(node.value)):,} characters is too long"
            else:
                problem = f"cannot read this value: {exc}"
            raise _SpecYAMLError(problem=problem, problem_mark=node.start_mark) from None


def safe_yaml() -> YAML:
    """ruamel's safe, pure-Python loader with this module's bounds (aliases, depth)."""
    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _BoundedComposer
    yaml.Constructor = _SafeConstructor
    yaml.max_depth = MAX_DEPTH
    return yaml


def _walk(root: Node, doc: SpecDocument, problems: list[SpecIssue]) -> None:
    """Record the mark of every value and key; report tags outside the core schema.

    Iterative, so that nesting cannot exhaust Python's stack; aliases were bounded while
    composing, so visiting a shared node once per path is bounded too.
    """
    stack: list[tuple[Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        mark = (node.start_mark.line + 1, node.start_mark.column + 1)
        doc.values[loc] = mark
        tag = str(node.tag)
        if tag == _TIMESTAMP and isinstance(node, ScalarNode):
            # A date written plainly (`description: 2024-01-01`, a run label) is text here:
            # no spec value is a date, and a datetime object fails every field.
            node.tag = _CORE + "str"
            tag = _CORE + "str"
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
            continue
        if isinstance(node, MappingNode):
            for key_node, value_node in reversed(node.value):
                key = key_node.value if isinstance(key_node, ScalarNode) else str(key_node.value)
                child = (*loc, key)
                doc.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                stack.append((value_node, child))
        elif isinstance(node, SequenceNode):
            for i in reversed(range(len(node.value))):
                stack.append((node.value[i], (*loc, i)))


class BoundError(Exception):
    """A YAML value past this module's bounds (aliases, recursion, depth, a huge number)."""

    def __init__(self, problem: str, line: int, col: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.col = col


def parse_value(text: str) -> Any:
    """One YAML value from the command line (``--set``), read as a spec file's values are.

    The spec's bounds hold (``BoundError``, with the 1-based line and column in ``text``);
    a plain date is text. Text that is not plain YAML data (a syntax error, a tag outside
    the core schema, a control character) is taken as the string itself.
    """
    if not text.strip():
        return ""
    yaml = safe_yaml()
    try:
        root = yaml.compose(text)
        if root is None:
            return None
        if not _plain_tags(root):
            return text
        return yaml.constructor.construct_document(root)
    except (_SpecYAMLError, MaxDepthExceededError) as exc:
        issue = _yaml_error(exc, "")
        raise BoundError(issue.message, issue.line or 1, issue.col or 1) from None
    except YAMLError:
        return text


def _plain_tags(root: Node) -> bool:
    """Whether every node is core-schema data; plain dates are made text on the way."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if str(node.tag) == _TIMESTAMP and isinstance(node, ScalarNode):
            node.tag = _CORE + "str"
        if str(node.tag) not in _ALLOWED_TAGS:
            return False
        if isinstance(node, MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return True


def _yaml_error(exc: MarkedYAMLError, display: str) -> SpecIssue:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
    if isinstance(exc, _SpecYAMLError):
        return SpecIssue(str(exc.problem), (), display, line, col)
    if isinstance(exc, MaxDepthExceededError):
        problem = f"values are nested more than {MAX_DEPTH} levels deep"
        return SpecIssue(problem, (), display, line, col)
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem and "duplicate key" in exc.problem:
        problem = exc.problem.split(" with value")[0]
    return SpecIssue(f"YAML syntax error: {problem}", (), display, line, col)


def _position(text: str, index: int) -> Mark:
    """1-based line and column of character ``index`` of ``text``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _control_character(text: str, display: str) -> SpecIssue | None:
    """The first character YAML does not allow in a file (a BEL, a NUL, ...), located."""
    match = Reader.NON_PRINTABLE.search(text)
    if match is None:
        return None
    code = ord(match.group())
    return SpecIssue(
        f"the control character U+{code:04X} is not allowed in YAML; delete it "
        f'(inside double quotes it may be written as "\\x{code:02x}")'
        if code < 0x100
        else f"the character U+{code:04X} is not allowed in YAML; delete it",
        (),
        display,
        *_position(text, match.start()),
    )


def parse_document(text: str, path: Path, *, source: Path | None = None) -> SpecDocument:
    """Parse spec text; raise ``SpecError`` for YAML errors and disallowed tags.

    ``path`` is the spec file the text stands for (relative paths resolve from its
    folder); ``source``, where given, is the file it was read from, named in errors.
    """
    doc = SpecDocument(path=path, text=text, data=None, source=source)
    bad = _control_character(text, doc.display_path)
    if bad is not None:
        raise SpecError([bad])
    yaml = safe_yaml()
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        raise SpecError([_yaml_error(exc, doc.display_path)]) from None
    except YAMLError as exc:  # unlocated (the text was checked for what ruamel refuses)
        raise SpecError([SpecIssue(f"YAML error: {exc}", (), doc.display_path, 1, 1)]) from None
    if root is None:
        raise SpecError([SpecIssue("the spec file is empty", (), doc.display_path, 1, 1)])
    problems: list[SpecIssue] = []
    _walk(root, doc, problems)
    if problems:
        raise SpecError(problems)
    try:
        doc.data = yaml.constructor.construct_document(root)
    except MarkedYAMLError as exc:
        raise SpecError([_yaml_error(exc, doc.display_path)]) from None
    except YAMLError as exc:  # ruamel's unlocated errors: say what, at the top of the file
        raise SpecError([SpecIssue(f"YAML error: {exc}", (), doc.display_path, 1, 1)]) from None
    if not isinstance(doc.data, dict):
        raise SpecError([doc.issue((), "the spec must be a mapping of keys to values")])
    return doc


def _not_utf8(raw: bytes, exc: UnicodeDecodeError, display: str) -> SpecIssue:
    """Where the first byte that is not UTF-8 sits, as line and column of the text."""
    start = raw.rfind(b"\n", 0, exc.start) + 1
    line = raw.count(b"\n", 0, exc.start) + 1
    col = len(raw[start : exc.start].decode("utf-8", errors="replace")) + 1
    hint = "save it as UTF-8"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        hint = "it looks like UTF-16; save it as UTF-8"
    return SpecIssue(
        f"the spec file is not UTF-8 text: byte 0x{raw[exc.start]:02x} ({exc.reason}); {hint}",
        (),
        display,
        line,
        col,
    )


def _display(path: Path) -> str:
    """``path`` as the user would write it (relative to the cwd when below it)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_spec_bytes(path: Path) -> bytes:
    """A spec file's bytes, at most ``MAX_BYTES`` of them (/dev/zero cannot hang a read)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([SpecIssue(f"spec file {path} does not exist")]) from None
    except IsADirectoryError:
        raise SpecError([SpecIssue(f"spec path {path} is a folder, not a file")]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SpecError([SpecIssue(f"spec file {path} cannot be read: {reason}")]) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(
            [SpecIssue(f"spec file {path} is larger than {MAX_BYTES // 2**20} MB; is it a spec?")]
        )
    return raw


def read_spec_text(path: Path) -> str:
    """A spec file's text: bounded in size, and UTF-8 (else the first bad byte, located)."""
    path = Path(path)
    raw = read_spec_bytes(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([_not_utf8(raw, exc, _display(path.resolve()))]) from None


def load_document(path: Path) -> SpecDocument:
    """Read and parse a spec file."""
    path = Path(path)
    return parse_document(read_spec_text(path), path.resolve())
