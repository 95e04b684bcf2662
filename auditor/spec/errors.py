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


def _clean_loc(loc: tuple[Any, ...]) -> Loc:
    """Drop the discriminator tags that pydantic inserts into error locations."""
    return tuple(part for part in loc if part not in _TAGS)


def _shown(value: Any) -> str | None:
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
    for err in exc.errors(include_url=False):
        rel = _clean_loc(err["loc"])
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
        elif kind == "missing":
            message = "required field is missing"
        elif kind.startswith("value_error"):
            message = message.removeprefix("Value error, ")
        elif kind in {"model_type", "model_attributes_type", "dict_type"}:
            message = f"expected a mapping, got {_types(err.get('input'))}"
        elif kind == "list_type":
            message = f"expected a list, got {_types(err.get('input'))}"
        else:
            shown = _shown(err.get("input"))
            if shown is not None:
                message += f" (got {shown})"
        out.append(doc.issue(loc, message, key=at_key))
    return out
