"""Integrated Gradients: path integral of gradients from a baseline to the input.

Sundararajan, Taly, Yan 2017, "Axiomatic Attribution for Deep Networks",
https://arxiv.org/abs/1703.01365. Engine: ``captum.attr.IntegratedGradients``. The
convergence delta (sum of attributions minus f(x) - f(baseline)) is kept per sample.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from captum.attr import IntegratedGradients as CaptumIG
from pydantic import Field

from auditor.explainers.base import Explainer, rows_per_pass
from auditor.explainers.baselines import BaselineKind, make_baseline
from auditor.plugin import Params


class IntegratedGradientsParams(Params):
    n_steps: int = Field(32, gt=0, le=10_000, description="Integration steps.")
    method: Literal[
        "gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"
    ] = Field("gausslegendre", description="Quadrature rule.")
    baseline: BaselineKind = Field("zeros", description="zeros | mean | blur | uniform")
    internal_batch_size: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Path points per forward pass (default: as many as fit in 2**22 input "
        "elements, at least the batch size).",
    )


class IntegratedGradients(Explainer):
    """Integrated Gradients from a baseline (Sundararajan et al. 2017)."""

    name: ClassVar[str] = "integrated_gradients"
    Params = IntegratedGradientsParams
    stats = ("convergence_delta",)

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        baseline = make_baseline(
            p.baseline, inputs, self.context.background, seed=self.context.seed
        )
        attributions, delta = CaptumIG(self.model).attribute(
            inputs,
            baselines=baseline,
            target=targets,
            n_steps=p.n_steps,
            method=p.method,
            internal_batch_size=p.internal_batch_size or max(len(inputs), rows_per_pass(inputs)),
            return_convergence_delta=True,
        )
        self.record(convergence_delta=delta)
        return attributions
