"""Tabular rows ``(F,)``: every column is a feature with a name that holds over the slice."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from auditor.modalities.base import Modality, register

if TYPE_CHECKING:
    import torch

    from auditor.explainers.grid import SliceFeatures


class TabularModality(Modality):
    name: ClassVar[str] = "tabular"
    fixed_features: ClassVar[bool] = True

    def magnitude(self, attributions: np.ndarray) -> np.ndarray:
        a = np.abs(np.asarray(attributions, dtype=np.float64))
        if a.ndim != 2:
            raise ValueError(f"tabular attributions must be (N, F), got shape {a.shape}")
        return a

    def ranked_features(
        self, input_shape: tuple[int, ...] | None, feature_names: list[str] | None
    ) -> list[str] | None:
        """The data set's names, or ``x0, x1, ...`` when it has none."""
        if feature_names is not None:
            return [str(name) for name in feature_names]
        if input_shape is not None:
            return [f"x{i}" for i in range(math.prod(int(side) for side in input_shape))]
        return None

    def slice_features(
        self,
        inputs: torch.Tensor,
        feature_names: list[str] | None,
        grid: tuple[int, int],
        pad_id: int | None = None,
    ) -> SliceFeatures:
        """The columns as they are, with a name for every column."""
        import torch

        from auditor.explainers.grid import SliceFeatures
        from auditor.explainers.names import tabular_names

        table = inputs.detach().to("cpu", torch.float64).reshape(len(inputs), -1).numpy()
        names = tabular_names(table.shape[1], feature_names)
        return SliceFeatures(table, names, np.arange(table.shape[1]), None)


TABULAR = register(TabularModality())
