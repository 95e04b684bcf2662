"""Twice the gradient: the README's example of a third-party explainer."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from auditor.explainers.base import Explainer
from auditor.plugin import Params


class GradientTimesTwoParams(Params):
    scale: float = Field(2.0, gt=0, le=100, description="Factor applied to the gradient.")


class GradientTimesTwo(Explainer):
    """Scaled gradient of the target output (an example plugin)."""

    name: ClassVar[str] = "gradient_x2"
    Params = GradientTimesTwoParams

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        inputs.requires_grad_(True)
        out = self.model(inputs).gather(1, targets[:, None]).sum()
        (grad,) = torch.autograd.grad(out, inputs)
        return self.params.scale * grad
