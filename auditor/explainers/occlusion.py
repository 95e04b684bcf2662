"""Occlusion: the drop in the target output when a sliding window is set to a baseline.

Zeiler, Fergus 2014, "Visualizing and Understanding Convolutional Networks",
https://arxiv.org/abs/1311.2901. Engine: ``captum.attr.Occlusion``; an input element's
attribution is the mean output change over the windows that cover it.

Window and stride: for images an int (square) or ``[h, w]``, each window spanning all
channels; for tabular data an int or ``[k]`` over the feature vector (default 1: each
feature alone, which on a linear model with a zero baseline gives ``W_t * x``).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch
from pydantic import BaseModel, Field
from torch import nn

from auditor.errors import SpecError
from auditor.explainers.base import ExplainContext, Explainer
from auditor.plugin import Params

Size = Annotated[int, Field(ge=1, le=100_000)]
GRID_CELLS = 8  # the default image window is an eighth of each side, as feature_ablation's grid


class OcclusionParams(Params):
    window: Size | list[Size] | None = Field(
        None,
        description="Occluded patch: int or [h, w] for images (all channels), int or [k] "
        "for tabular. Default: ceil(side / 8) per image side, 1 for tabular.",
    )
    stride: Size | list[Size] | None = Field(
        None, description="Step between windows, same forms. Default: half the window, at least 1."
    )
    baseline: float = Field(
        0.0, ge=-1e9, le=1e9, description="Value written into the occluded window."
    )
    perturbations_per_eval: int = Field(
        16, ge=1, le=100_000, description="Occluded copies per forward pass."
    )


class Occlusion(Explainer):
    """Output drop when a sliding window is set to a baseline (Zeiler and Fergus 2014)."""

    name: ClassVar[str] = "occlusion"
    Params = OcclusionParams

    def __init__(self, model: nn.Module, params: BaseModel, context: ExplainContext) -> None:
        super().__init__(model, params, context)
        # Checked here so that a bad window is a spec error before any batch runs.
        self.window, self.stride = window_and_stride(self.params, context)

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import Occlusion as CaptumOcclusion

        p = self.params
        return CaptumOcclusion(self.forward_model).attribute(
            inputs,
            sliding_window_shapes=self.window,
            strides=self.stride,
            baselines=p.baseline,
            target=targets,
            perturbations_per_eval=p.perturbations_per_eval,
        )


def window_and_stride(
    params: OcclusionParams, context: ExplainContext
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Captum's window and stride (one entry per input dimension) from the spec's values."""
    shape = tuple(context.input_shape)
    spatial = shape[1:] if context.modality == "image" else shape
    if params.window is None:
        window = (
            tuple(-(-s // GRID_CELLS) for s in spatial)
            if context.modality == "image"
            else (1,) * len(spatial)
        )
    else:
        window = _expand("window", params.window, spatial)
    if params.stride is None:
        stride = tuple(max(1, w // 2) for w in window)
    else:
        stride = _expand("stride", params.stride, spatial)
    for name, sizes in (("window", window), ("stride", stride)):
        if any(s > limit for s, limit in zip(sizes, spatial, strict=True)):
            raise SpecError.at(
                ("params", name),
                f"{name} {list(sizes)} is larger than the input's "
                f"{'image size' if context.modality == 'image' else 'feature count'} "
                f"{list(spatial)}",
            )
    if context.modality == "image":
        # The window spans every channel; the channel stride then has one position.
        return (shape[0], *window), (shape[0], *stride)
    return window, stride


def _expand(name: str, value: int | list[int], spatial: tuple[int, ...]) -> tuple[int, ...]:
    """An int repeated over the spatial dims, or a list with one entry per spatial dim."""
    if isinstance(value, int):
        return (value,) * len(spatial)
    if len(value) != len(spatial):
        raise SpecError.at(
            ("params", name),
            f"{name} needs an int or {len(spatial)} value(s) "
            f"(input shape {list(spatial)}), got {list(value)}",
        )
    return tuple(value)
