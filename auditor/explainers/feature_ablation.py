"""Feature ablation: the drop in the target output when a feature is set to a baseline.

Zeiler, Fergus 2014, "Visualizing and Understanding Convolutional Networks",
https://arxiv.org/abs/1311.2901 (ablation as the perturbation baseline of attribution;
see also Captum's reference, https://captum.ai/api/feature_ablation.html). Engine:
``captum.attr.FeatureAblation``.

Features: for tabular data each feature alone (on a linear model with a zero baseline the
result is ``W_t * x``); for images square grid cells of ``cell`` pixels (default: an 8x8
grid) spanning all channels, every pixel of a cell receiving the cell's output drop.
With ``data.groups`` each group is ablated as one unit and its drop split evenly over its
columns. Superpixels are not offered: a regular grid needs no segmentation library and is the same
for every sample.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from pydantic import BaseModel, Field

from auditor.errors import SpecIssue
from auditor.explainers.base import Explainer, issues_of
from auditor.explainers.grid import check_square
from auditor.modalities import modality_of
from auditor.plugin import Params


class FeatureAblationParams(Params):
    cell: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Images: side in pixels of the grid cells ablated together (edge cells "
        "may be smaller). Default: an 8x8 grid, ceil(side / 8). Tabular data: unused.",
    )
    baseline: float = Field(0.0, ge=-1e9, le=1e9, description="Value an ablated feature is set to.")
    perturbations_per_eval: int = Field(
        16, ge=1, le=100_000, description="Ablated copies per forward pass."
    )


class FeatureAblation(Explainer):
    """Output drop when each feature or grid cell is set to a baseline."""

    name: ClassVar[str] = "feature_ablation"
    Params = FeatureAblationParams

    @classmethod
    def input_issues(
        cls, params: BaseModel, modality: str, input_shape: tuple[int, ...]
    ) -> list[SpecIssue]:
        return issues_of(lambda: check_square("cell", params.cell, modality, input_shape))  # type: ignore[attr-defined]

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import FeatureAblation as CaptumFeatureAblation

        p = self.params
        mask = modality_of(self.context.modality).feature_mask(tuple(inputs.shape[1:]), p.cell)
        groups = self.context.groups  # data.groups: a group is ablated as one unit
        if groups is not None:
            mask = groups.mask().to(inputs.device)
        removed = self.context.removed
        draws = getattr(self.context.embedding, "draws", None)  # structured: marginal draws
        references = (
            [p.baseline if removed is None else removed(inputs)]
            if draws is None
            else list(draws(inputs).unbind(1))
        )
        total = None
        for reference in references:  # several: the mean drop over the references
            drop = CaptumFeatureAblation(self.forward_model).attribute(
                inputs,
                baselines=reference,
                target=targets,
                feature_mask=None if mask is None else mask.unsqueeze(0),
                perturbations_per_eval=p.perturbations_per_eval,
            )
            total = drop if total is None else total + drop
        assert total is not None
        total = total if len(references) == 1 else total / len(references)
        return total if groups is None else groups.per_column(total)  # split evenly


def feature_mask(shape: tuple[int, ...], modality: str, cell: int | None) -> torch.Tensor:
    """Feature index of every input element, with the input's shape (no batch dim).

    Tabular: each element is its own feature, numbered in order. Images ``(C, H, W)``: the
    grid cell of side ``cell`` (default: ``ceil(max(H, W) / 8)``, an 8x8 grid) that holds
    the pixel, numbered row by row, the same over every channel.
    """
    mask = modality_of(modality).feature_mask(shape, cell)
    return torch.arange(math.prod(shape)).reshape(shape) if mask is None else mask
