"""Base of data sources and the dataset they produce.

Shape contract: ``AuditDataset.get(indices)`` returns a float32 CPU tensor of shape
``(len(indices), *input_shape)``; images are ``(C, H, W)``, tabular rows ``(F,)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel

from auditor.errors import SpecIssue
from auditor.plugin import Plugin

Modality = Literal["image", "tabular", "text", "structured"]


class AuditDataset(ABC):
    """Samples with labels and the names a report needs."""

    modality: Modality
    input_shape: tuple[int, ...]
    class_names: list[str]
    feature_names: list[str] | None
    labels: np.ndarray  # int64, one per sample
    description: str

    def __len__(self) -> int:
        return len(self.labels)

    @abstractmethod
    def get(self, indices: np.ndarray) -> torch.Tensor:
        """Inputs for these indices, float32, shape ``(len(indices), *input_shape)``."""

    def raw_values(self, indices: np.ndarray) -> np.ndarray | None:
        """Tabular inputs in the data's own units (before the source standardized them),
        float64 ``(len(indices), F)``, for reports; None when they are ``get``'s values."""
        return None


class TensorDataset(AuditDataset):
    """A dataset held in memory as one float32 tensor."""

    def __init__(
        self,
        inputs: torch.Tensor,
        labels: np.ndarray,
        *,
        modality: Modality,
        class_names: list[str],
        feature_names: list[str] | None = None,
        description: str = "",
    ) -> None:
        if len(inputs) != len(labels):
            raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
        self.inputs = inputs.detach().to(torch.float32).contiguous()
        self.labels = np.asarray(labels, dtype=np.int64)
        self.modality = modality
        self.input_shape = tuple(self.inputs.shape[1:])
        self.class_names = list(class_names)
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.description = description

    def get(self, indices: np.ndarray) -> torch.Tensor:
        return self.inputs[torch.as_tensor(np.asarray(indices, dtype=np.int64))].clone()


@dataclass(frozen=True)
class StaticInfo:
    """What a data source can tell about its data without loading it (for ``validate``).

    ``input_shape`` is one sample's shape (no batch dim) after the spec's transforms; a
    field is None where it cannot be known cheaply.
    """

    modality: str
    input_shape: tuple[int, ...] | None
    feature_names: list[str] | None
    class_names: list[str] | None
    #: Problems in the data found on the way (a CSV's text column, an unknown label), given
    #: here rather than raised so that the spec is still planned with what is known.
    issues: tuple[SpecIssue, ...] = ()


class DataSource(Plugin):
    """Turns the spec's ``data:`` block (less ``source``, ``slice``, ``batch_size``) into data.

    Errors that are the spec's fault are raised as ``SpecError.at(("data", field), msg)``.
    """

    kind: ClassVar[str] = "dataset"

    @abstractmethod
    def load(self, params: BaseModel) -> AuditDataset:
        """Load (or open lazily) the whole dataset; slicing happens afterwards."""

    @classmethod
    def static_info(cls, params: BaseModel) -> StaticInfo | None:
        """Modality, shape and names known from the params and file headers alone, or None.

        Cheap by contract: no model, no full data load (a file header, the first image's
        size, a table of a bundled data set). ``auditor validate`` plans with it; errors
        that are the spec's fault may be raised as ``SpecError.at(("data", field), msg)``.
        """
        return None


def default_class_names(labels: np.ndarray) -> list[str]:
    """``["0", "1", ...]`` up to the largest label."""
    n = int(labels.max()) + 1 if len(labels) else 0
    return [str(i) for i in range(n)]
