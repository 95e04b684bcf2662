"""Integrated Gradients: path integral of gradients from a baseline to the input.

Sundararajan, Taly, Yan 2017, "Axiomatic Attribution for Deep Networks",
https://arxiv.org/abs/1703.01365. The computation of ``captum.attr.IntegratedGradients``
with Captum's quadrature rules (``approximation_parameters``); the tests check the two
equal. The path points of a batch go through the model in as few passes as memory allows,
with one backward pass per chunk of steps (Captum also builds a gradient seed per output
row, which costs as much as the model on small inputs). The convergence delta (sum of
attributions minus f(x) - f(baseline)) is kept per sample.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from auditor.explainers.base import Explainer
from auditor.explainers.baselines import BaselineKind, make_baseline
from auditor.explainers.gradients import input_gradient
from auditor.explainers.passes import rows_per_pass
from auditor.plugin import Params

Method = Literal[
    "gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"
]


class IntegratedGradientsParams(Params):
    n_steps: int = Field(32, gt=0, le=10_000, description="Integration steps.")
    method: Method = Field("gausslegendre", description="Quadrature rule.")
    baseline: BaselineKind = Field("zeros", description="zeros | mean | blur | uniform")
    internal_batch_size: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Path points per forward pass (default: sized from the input and the "
        "model's activations, see auditor/explainers/passes.py).",
    )


def integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    targets: torch.Tensor,
    n_steps: int,
    method: Method = "gausslegendre",
    rows: int | None = None,
) -> torch.Tensor:
    """``(x - b) * sum_k w_k grad f_t(b + a_k (x - b))`` per sample: shape of ``inputs``.

    ``rows`` bounds the path points per pass (default: ``rows_per_pass``): whole steps of
    the batch when they fit, else fewer samples one step at a time.
    """
    from captum.attr._utils.approximation_methods import approximation_parameters

    sizes_of, alphas_of = approximation_parameters(method)
    sizes, alphas = sizes_of(n_steps), alphas_of(n_steps)
    rows = rows or rows_per_pass(model, inputs)
    samples = max(1, min(len(inputs), rows))
    steps = max(1, rows // samples)
    difference = inputs - baselines
    total = torch.zeros_like(inputs)
    for first in range(0, len(inputs), samples):
        part = slice(first, first + samples)
        base, diff, t = baselines[part], difference[part], targets[part]
        for start in range(0, n_steps, steps):
            chunk = alphas[start : start + steps]
            points = torch.cat([base + a * diff for a in chunk])
            grads = input_gradient(model, points, t.repeat(len(chunk)))
            weights = torch.tensor(sizes[start : start + steps], dtype=grads.dtype)
            shaped = grads.view(len(chunk), len(t), *inputs.shape[1:])
            total[part] += (shaped * weights.view(-1, *([1] * inputs.dim()))).sum(dim=0)
    return total * difference


class IntegratedGradients(Explainer):
    """Integrated Gradients from a baseline (Sundararajan et al. 2017)."""

    name: ClassVar[str] = "integrated_gradients"
    differentiable = True
    Params = IntegratedGradientsParams
    stats = ("convergence_delta",)

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        removed = self.context.removed  # text: every token removed, padding kept
        baseline = (
            removed(inputs)
            if removed is not None
            else make_baseline(p.baseline, inputs, self.context.background, seed=self.context.seed)
        )
        attributions = integrated_gradients(
            self.model,
            inputs,
            baseline,
            targets,
            p.n_steps,
            p.method,
            p.internal_batch_size,
        )
        with torch.no_grad():
            ends = self.model(torch.cat([inputs, baseline])).gather(
                1, targets.repeat(2).view(-1, 1)
            )
        f_x, f_b = ends.view(2, -1)
        self.record(convergence_delta=attributions.flatten(1).sum(1) - (f_x - f_b))
        return attributions
