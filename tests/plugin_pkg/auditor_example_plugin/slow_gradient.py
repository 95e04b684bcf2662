"""Gradient x input that pauses after each batch: lets tests kill a run mid-explainer."""

from __future__ import annotations

import time
from typing import ClassVar

import torch
from pydantic import Field

from auditor.explainers.base import Explainer
from auditor.plugin import Params


class SlowGradientParams(Params):
    delay: float = Field(0.1, ge=0, le=10, description="Seconds to pause after each batch.")


class SlowGradient(Explainer):
    """Gradient times input, slowly (a test plugin)."""

    name: ClassVar[str] = "slow_gradient"
    Params = SlowGradientParams

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        inputs.requires_grad_(True)
        out = self.model(inputs).gather(1, targets[:, None]).sum()
        (grad,) = torch.autograd.grad(out, inputs)
        time.sleep(self.params.delay)
        return grad * inputs.detach()
