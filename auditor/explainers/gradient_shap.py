"""GradientSHAP (expected gradients): gradients at random points between background and input.

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874; Erion et al. 2021, "Improving performance of deep
learning models with axiomatic attribution priors and expected gradients",
https://arxiv.org/abs/1906.10670. Engine: ``captum.attr.GradientShap`` with baselines
drawn from the slice. Each sample is explained with the same seeded draws, so a
sample's attribution does not depend on the batch it came in. The mean convergence delta
(sum of attributions minus ``f(x) - f(b)`` over the draws) is kept per sample.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from captum.attr import GradientShap as CaptumGradientShap
from pydantic import Field

from auditor.explainers.base import Explainer
from auditor.explainers.shap_support import background_sample, numpy_seed
from auditor.plugin import Params


class GradientShapParams(Params):
    n_samples: int = Field(
        50, ge=1, le=100_000, description="Random (baseline, point on the path) draws per sample."
    )
    stdevs: float = Field(
        0.0, ge=0.0, le=100.0, description="Std of Gaussian noise added to each draw's input."
    )
    n_background: int = Field(
        64, ge=1, le=100_000, description="Background samples from the slice (seeded subset)."
    )


class GradientShap(Explainer):
    """Expected gradients over background samples (Lundberg and Lee 2017; Erion et al. 2021)."""

    name: ClassVar[str] = "gradient_shap"
    stats = ("convergence_delta",)
    Params = GradientShapParams

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        background = background_sample(self.context, p.n_background, self.name)
        method = CaptumGradientShap(self.model)
        parts, gaps = [], []
        inputs.requires_grad_()  # our own clone (see Explainer.explain)
        for i in range(len(inputs)):
            # Captum draws baselines and path points from numpy's global generator and
            # the noise from torch's: both restart for every sample.
            torch.manual_seed(self.context.seed)
            with numpy_seed(self.context.seed):
                attributions, delta = method.attribute(
                    inputs[i : i + 1],
                    baselines=background,
                    n_samples=p.n_samples,
                    stdevs=p.stdevs,
                    target=targets[i : i + 1],
                    return_convergence_delta=True,
                )
            parts.append(attributions)
            gaps.append(delta.mean().reshape(1))
        self.record(convergence_delta=torch.cat(gaps))
        return torch.cat(parts)
