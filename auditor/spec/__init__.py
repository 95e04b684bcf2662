"""Audit specs: safe YAML with line marks, pydantic validation, plugin params.

The names below are loaded on first use (PEP 562), so that importing one submodule
(``auditor.spec.model`` for the report's settings, ``auditor.spec.document``) does not load
the plugin registries that ``auditor.spec.load`` needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.spec.document import SpecDocument, load_document
    from auditor.spec.load import ValidatedSpec, load_spec
    from auditor.spec.model import AuditSpec

__all__ = ["AuditSpec", "SpecDocument", "ValidatedSpec", "load_document", "load_spec"]

_HOME = {
    "AuditSpec": "auditor.spec.model",
    "SpecDocument": "auditor.spec.document",
    "load_document": "auditor.spec.document",
    "ValidatedSpec": "auditor.spec.load",
    "load_spec": "auditor.spec.load",
}


def __getattr__(name: str) -> Any:
    """Import the submodule that defines ``name`` and keep the name here."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
