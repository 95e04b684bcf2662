"""Saliency: the gradient of the target output with respect to the input.

Simonyan, Vedaldi, Zisserman 2014, "Deep Inside Convolutional Networks",
https://arxiv.org/abs/1312.6034. Engine: ``captum.attr.Saliency``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from captum.attr import Saliency as CaptumSaliency
from pydantic import Field

from auditor.explainers.base import Explainer
from auditor.plugin import Params


class SaliencyParams(Params):
    abs: bool = Field(True, description="Absolute value of the gradient (the paper's map).")


class Saliency(Explainer):
    """Gradient of the target output with respect to the input (Simonyan et al. 2014)."""

    name: ClassVar[str] = "saliency"
    Params = SaliencyParams

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        inputs.requires_grad_(True)  # ours to change: the base passed a copy
        method = CaptumSaliency(self.model)
        return method.attribute(inputs, target=targets, abs=self.params.abs)
