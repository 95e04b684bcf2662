"""Turn pydantic validation errors into spec issues with 'did you mean' hints."""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from auditor.errors import Loc, SpecIssue
from auditor.spec.document import SpecDocument
from auditor.suggest import did_you_mean

_TAGS = {  # discriminator tags pydantic puts in locations
    "metric-check",
    "ranking-check",
    "standardize-flag",
    "standardize-statistics",
    "standardize-file",
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models reachable from an annotation (through Optional, list, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out.extend(_models_in(arg))
    return out


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def known_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys allowed at ``loc`` inside ``model``."""
    candidates: list[type[BaseModel]] = [model]
    for part in loc:
        nxt: list[type[BaseModel]] = []
        for cand in candidates:
            if isinstance(part, int):
                nxt.append(cand)
                continue
            annotation = _field(cand, part)
            if annotation is not None:
                nxt.extend(_models_in(annotation))
        candidates = nxt
    keys: list[str] = []
    for cand in candidates:
        keys.extend(info.alias or name for name, info in cand.model_fields.items())
    return sorted(set(keys))


#: Kinds of pydantic error that mean "the value has another type than this union member".
_TYPE_KINDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
    "path_type": "a path",
    "is_instance_of": None,
}
_SCALAR_TAGS = {"str", "int", "float", "bool", "none", "bytes", "list", "dict", "tuple", "any"}


def _looks_like_tag(part: Any) -> bool:
    """Whether a location part is pydantic's name for a schema (a union member, a
    validator, a discriminator tag) rather than a key the user wrote."""
    if not isinstance(part, str):
        return False
    return (
        part in _TAGS
        or part in _SCALAR_TAGS
        or any(c in part for c in "[]()',-")
        or part[:1].isupper()  # a model class name: SliceSpec, Normalize
    )


_ABSENT = object()


def _child(node: Any, part: Any) -> Any:
    """``node[part]`` where the user's data has it, else ``_ABSENT``."""
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _ABSENT


def _split_loc(loc: tuple[Any, ...], data: Any) -> tuple[Loc, Loc, str | None]:
    """``(path in the user's words, path up to the first union member, that member)``.

    A part is the user's when it indexes the data they wrote (or names a field that is
    missing); pydantic's schema names (``literal['predicted','label']``,
    ``constrained-int``, ``function-after[...]``, ``metric-check``) are dropped.
    """
    kept: list[str | int] = []
    site: Loc | None = None
    member = None
    node = data
    for part in loc:
        child = _child(node, part)
        if child is not _ABSENT:
            kept.append(part)
            node = child
        elif _looks_like_tag(part):
            if site is None:
                site, member = tuple(kept), str(part)
        else:
            kept.append(part)
            node = None
    return tuple(kept), site if site is not None else tuple(kept), member


def _expected(err: Any) -> str | None:
    kind = err["type"]
    if kind == "literal_error":
        return str(err["msg"]).removeprefix("Input should be ")
    return _TYPE_KINDS.get(kind)


def _one_member(errors: list[tuple[Loc, Any]]) -> list[tuple[Loc, Any]]:
    """Of the union members' errors at one place, the ones that say what is wrong.

    A member that got past the value's type (deeper into a list, or to a bound) explains
    the problem; when every member refused the type, one error names every type allowed.
    """
    members: dict[str, list[tuple[Loc, Any]]] = {}
    for loc, err in errors:
        members.setdefault(err["_member"], []).append((loc, err))
    depth = max(len(loc) for loc, _ in errors)
    for group in members.values():
        if any(len(loc) == depth for loc, _ in group) and depth > len(errors[0][1]["_site"]):
            return group
    for group in members.values():
        if all(
            err["type"] not in _TYPE_KINDS and err["type"] != "literal_error" for _, err in group
        ):
            return group
    expected = [_expected(err) for _, err in errors]
    if any(e is None for e in expected):
        return members[next(iter(members))]
    loc, first = errors[0]
    merged = dict(first, type="union_type")
    names = list(dict.fromkeys(e for e in expected if e))
    merged["msg"] = "expected " + (
        ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    )
    return [(loc, merged)]


def user_errors(exc: ValidationError, data: Any) -> list[tuple[Loc, Any]]:
    """pydantic's errors with locations in the user's words, one per problem."""
    plain: list[tuple[Loc, Any]] = []
    unions: dict[Loc, list[tuple[Loc, Any]]] = {}
    order: list[Loc | None] = []
    for err in exc.errors(include_url=False):
        loc, site, member = _split_loc(err["loc"], data)
        if member is None or member in _TAGS:
            plain.append((loc, err))
            order.append(None)
            continue
        err = dict(err, _member=member, _site=site)
        if site not in unions:
            unions[site] = []
            order.append(site)
        unions[site].append((loc, err))
    out: list[tuple[Loc, Any]] = []
    plain_iter = iter(plain)
    for site in order:
        out.extend([next(plain_iter)] if site is None else _one_member(unions[site]))
    return _short_lists(out, data)


def _short_lists(errors: list[tuple[Loc, Any]], data: Any) -> list[tuple[Loc, Any]]:
    """A list too short for a fixed-size value (``[h, w]``) is one error at the list, not
    "required field is missing" at each absent index."""
    out: list[tuple[Loc, Any]] = []
    short: dict[Loc, dict[str, Any]] = {}
    for loc, err in errors:
        value: Any = data
        for part in loc[:-1]:
            value = _child(value, part)
        if err["type"] != "missing" or not loc or not isinstance(loc[-1], int):
            out.append((loc, err))
        elif isinstance(value, list):
            parent = loc[:-1]
            if parent not in short:
                short[parent] = dict(err, type="list_too_short")
                out.append((parent, short[parent]))
            short[parent]["msg"] = f"expected {loc[-1] + 1} items, got {len(value)}"
        else:
            out.append((loc, err))
    return out


def _shown(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return "an integer too large to show"
    if isinstance(value, bool | int | float) or value is None:
        return repr(value) if not isinstance(value, bool) else str(value).lower()
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    return None


def _types(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(
        type(value), type(value).__name__
    )


def issues_from(
    exc: ValidationError,
    doc: SpecDocument,
    *,
    model: type[BaseModel],
    prefix: Loc = (),
    extra_known: tuple[str, ...] = (),
    what: str = "key",
) -> list[SpecIssue]:
    """One ``SpecIssue`` per pydantic error, located in the YAML file."""
    out = []
    data: Any = doc.data
    for part in prefix:
        data = _child(data, part)
    for rel, err in user_errors(exc, data):
        loc = (*prefix, *rel)
        kind = err["type"]
        message = err["msg"]
        at_key = False
        if kind == "extra_forbidden":
            key = str(rel[-1])
            known = [k for k in [*known_keys(model, rel[:-1]), *extra_known] if k]
            message = f"unknown {what} '{key}'.{did_you_mean(key, known)}"
            if known:
                message += f" Allowed: {', '.join(sorted(set(known)))}"
            at_key = True
        elif kind == "invalid_key":
            noun = {int: "a number", float: "a number", bool: "true or false", tuple: "a list"}
            got = noun.get(type(err.get("input")), "null" if err.get("input") is None else "")
            message = f"a key must be text, not {got or _types(err.get('input'))}; quote it"
            loc = (*prefix, *rel[:-1], str(rel[-1]))
            at_key = True
        elif kind == "missing":
            message = "required field is missing"
        elif kind.startswith("value_error"):
            message = message.removeprefix("Value error, ")
        elif kind in {"model_type", "model_attributes_type", "dict_type"}:
            message = f"expected a mapping, got {_types(err.get('input'))}"
        elif kind == "path_type":
            message = f"expected a path, got {_types(err.get('input'))}"
        elif kind == "list_type":
            message = f"expected a list, got {_types(err.get('input'))}"
        else:
            # YAML has lists, not tuples; "after validation" is pydantic's business.
            message = message.replace("Tuple should", "List should")
            message = message.replace(" after validation", "")
            shown = _shown(err.get("input"))
            if shown is None and kind == "union_type":
                shown = _types(err.get("input"))
            if shown is not None:
                message += f" (got {shown})"
        out.append(doc.issue(loc, message, key=at_key))
    return out
