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

from auditor.errors import SpecError, SpecIssue
from auditor.explainers.base import ExplainContext, Explainer, issues_of
from auditor.modalities import modality_of
from auditor.plugin import Params

Size = Annotated[int, Field(ge=1, le=100_000)]


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
    on_device = True

    def __init__(self, model: nn.Module, params: BaseModel, context: ExplainContext) -> None:
        super().__init__(model, params, context)
        # Planning checks the same rule first (input_issues); kept here for direct callers.
        self.window, self.stride = window_and_stride(
            self.params, context.modality, context.input_shape
        )

    @classmethod
    def input_issues(
        cls, params: BaseModel, modality: str, input_shape: tuple[int, ...]
    ) -> list[SpecIssue]:
        return issues_of(lambda: window_and_stride(params, modality, input_shape))  # type: ignore[arg-type]

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import Occlusion as CaptumOcclusion

        p = self.params
        removed = self.context.removed
        return CaptumOcclusion(self.forward_model).attribute(
            inputs,
            sliding_window_shapes=self.window,
            strides=self.stride,
            baselines=p.baseline if removed is None else removed(inputs),
            target=targets,
            perturbations_per_eval=p.perturbations_per_eval,
        )


def window_and_stride(
    params: OcclusionParams, modality: str, input_shape: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Captum's window and stride (one entry per input dimension) from the spec's values.

    A window or stride that does not fit the input is a ``SpecError`` naming both.
    """
    shape = tuple(input_shape)
    kind = modality_of(modality)
    spatial = kind.window_dims(shape)
    issues: list[SpecIssue] = []
    window = stride = None
    if params.window is None:
        window = kind.default_window(spatial)
    else:
        window = _sizes("window", params.window, spatial, modality, issues)
    if params.stride is None:
        stride = tuple(max(1, w // 2) for w in window) if window is not None else None
    else:
        stride = _sizes("stride", params.stride, spatial, modality, issues)
    if issues or window is None or stride is None:
        raise SpecError(issues)
    return kind.full_window(shape, window, stride)


def _sizes(
    name: str,
    value: int | list[int],
    spatial: tuple[int, ...],
    modality: str,
    issues: list[SpecIssue],
) -> tuple[int, ...] | None:
    """``value`` expanded over the spatial dims if it fits them; else None and an issue."""
    try:
        sizes = _expand(name, value, spatial)
    except SpecError as exc:
        issues.extend(exc.issues)
        return None
    if any(s > limit for s, limit in zip(sizes, spatial, strict=True)):
        what = modality_of(modality).size_word
        issues.append(
            SpecIssue(
                f"{name} {list(sizes)} is larger than the input's {what} {list(spatial)}",
                ("params", name),
            )
        )
        return None
    return sizes


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
