"""What every plugin has: a ``name`` (the spec's ``type``/``source``) and a ``Params`` model."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base of every plugin's parameters: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Plugin:
    """Base of all plugins. Subclasses set ``name`` and may override ``Params``."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = Params

    @classmethod
    def summary(cls) -> str:
        """First line of the class docstring."""
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @classmethod
    def param_table(cls) -> list[dict[str, Any]]:
        """Rows of (name, type, default, description) for ``auditor plugins``."""
        rows = []
        for key, info in cls.Params.model_fields.items():
            default = (
                "required" if info.is_required() else info.get_default(call_default_factory=True)
            )
            rows.append(
                {
                    "name": info.alias or key,
                    "type": type_name(info.annotation),
                    "default": default,
                    "description": info.description or "",
                }
            )
        return rows


def type_name(annotation: Any) -> str:
    """A short readable type: ``int | None``, ``'zeros' | 'mean'``, ``list[str]``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in args if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]" if inner else origin.__name__
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))
