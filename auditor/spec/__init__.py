"""Audit specs: safe YAML with line marks, pydantic validation, plugin params."""

from auditor.spec.document import SpecDocument, load_document
from auditor.spec.load import ValidatedSpec, load_spec
from auditor.spec.model import AuditSpec

__all__ = ["AuditSpec", "SpecDocument", "ValidatedSpec", "load_document", "load_spec"]
