"""``--set key.path=value`` overrides from the command line."""

from __future__ import annotations

import copy
import re
from typing import Any

from ruamel.yaml.error import YAMLError

from auditor.errors import SpecError, SpecIssue
from auditor.spec.document import SpecDocument, safe_yaml

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


def apply_overrides(doc: SpecDocument, overrides: list[str] | tuple[str, ...]) -> Any:
    """A copy of the spec data with each override applied (values parsed as YAML)."""
    data = copy.deepcopy(doc.data)
    yaml = safe_yaml()  # the spec file's bounds: no alias bomb on the command line either
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError([SpecIssue(f"--set {item!r}: expected key.path=value")])
        parts = parse_key(key.strip())
        try:
            value = yaml.load(raw) if raw.strip() else ""
        except YAMLError:  # tags and odd text are taken as a plain string
            value = raw
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
