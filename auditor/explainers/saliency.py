"""Saliency: the gradient of the target output with respect to the input.

Simonyan, Vedaldi, Zisserman 2014, "Deep Inside Convolutional Networks",
https://arxiv.org/abs/1312.6034. The computation of ``captum.attr.Saliency`` (tests check
them equal), on the input gradient the run shares with Input x Gradient.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from auditor.explainers.base import Explainer
from auditor.plugin import Params


class SaliencyParams(Params):
    abs: bool = Field(True, description="Absolute value of the gradient (the paper's map).")


class Saliency(Explainer):
    """Gradient of the target output with respect to the input (Simonyan et al. 2014)."""

    name: ClassVar[str] = "saliency"
    differentiable = True
    Params = SaliencyParams
    reads_input_gradient = True
    on_device = True

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        grad = self.input_gradient(inputs, targets)
        return grad.abs() if self.params.abs else grad.clone()
