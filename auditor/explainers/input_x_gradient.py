"""Input x Gradient: the input multiplied elementwise by the target's gradient.

Shrikumar, Greenside, Shcherbina, Kundaje 2016, "Not Just a Black Box: Learning
Important Features Through Propagating Activation Differences",
https://arxiv.org/abs/1605.01713. The computation of ``captum.attr.InputXGradient`` (tests
check them equal), on the input gradient the run shares with Saliency. On a linear model
f(x) = Wx + b it is exactly ``W_t * x``.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from auditor.explainers.base import Explainer
from auditor.plugin import Params


class InputXGradientParams(Params):
    """Input x Gradient has no parameters."""


class InputXGradient(Explainer):
    """The input times the gradient of the target output (Shrikumar et al. 2016)."""

    name: ClassVar[str] = "input_x_gradient"
    differentiable = True
    Params = InputXGradientParams
    reads_input_gradient = True
    on_device = True

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return inputs * self.input_gradient(inputs, targets)
