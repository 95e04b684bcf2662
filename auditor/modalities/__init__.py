"""Modalities: one strategy object per kind of input (``base.Modality``)."""

from auditor.modalities import image, structured, tabular, text  # noqa: F401  (they register themselves)
from auditor.modalities.base import Modality, modality_of

__all__ = ["Modality", "modality_of"]
