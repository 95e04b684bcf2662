"""Modalities: one strategy object per kind of input (``base.Modality``)."""

# They register themselves; the torch-free parts only (text and structured data are fed to
# the model by auditor.modalities.text / .structured, imported where a run needs them).
from auditor.modalities import (  # noqa: F401
    image,
    structured_modality,
    tabular,
    text_modality,
)
from auditor.modalities.base import Modality, modality_of

__all__ = ["Modality", "modality_of"]
