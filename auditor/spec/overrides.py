"""``--set key.path=value`` overrides from the command line."""

from __future__ import annotations

import copy
import re
from typing import Any

from auditor.errors import SpecError, SpecIssue
from auditor.spec.document import BoundError, SpecDocument, parse_value

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_key(key: str) -> list[str | int]:
    """``explainers[0].params.n_steps`` or ``explainers.0.params.n_steps`` -> parts."""
    parts: list[str | int] = []
    for name, index in _PART.findall(key):
        if index:
            parts.append(int(index))
        elif name.isdigit():
            parts.append(int(name))
        else:
            parts.append(name)
    return parts


def set_value(item: str) -> Any:
    """The value of ``--set key.path=value``, parsed as YAML with the spec file's bounds.

    Text that is not plain YAML data is taken as a string; a value past the bounds (an
    alias bomb, deep nesting, a huge number) is a ``SpecError`` naming the ``--set``.
    """
    key, _, raw = item.partition("=")
    try:
        return parse_value(raw)
    except BoundError as exc:
        where = f"column {exc.col}" if exc.line == 1 else f"line {exc.line}, column {exc.col}"
        raise SpecError(
            [SpecIssue(f"--set {key.strip()}: {exc.problem} (at {where} of the value)")]
        ) from None


def apply_overrides(doc: SpecDocument, overrides: list[str] | tuple[str, ...]) -> Any:
    """A copy of the spec data with each override applied (values parsed as YAML)."""
    values: list[tuple[str, list[str | int], Any]] = []
    problems: list[SpecIssue] = []
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise SpecError([SpecIssue(f"--set {item!r}: expected key.path=value")])
        try:
            values.append((key.strip(), parse_key(key.strip()), set_value(item)))
        except SpecError as exc:  # every value past the bounds at once
            problems.extend(exc.issues)
    if problems:
        raise SpecError(problems)
    data = copy.deepcopy(doc.data)
    for key, parts, value in values:
        node = data
        for depth, part in enumerate(parts[:-1]):
            nxt = parts[depth + 1]
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                if isinstance(node, dict) and isinstance(part, str):
                    node[part] = [] if isinstance(nxt, int) else {}
                    node = node[part]
                else:
                    raise SpecError(
                        [SpecIssue(f"--set {key}: there is no '{part}' to set a value in")]
                    ) from None
        doc.overridden.add(tuple(parts))
        last = parts[-1]
        if isinstance(node, list) and isinstance(last, int) and last == len(node):
            node.append(value)
        elif (isinstance(node, list) and isinstance(last, int) and last < len(node)) or isinstance(
            node, dict
        ):
            node[last] = value
        else:
            raise SpecError([SpecIssue(f"--set {key}: cannot set '{last}' here")])
    return data
