"""Integrated Gradients: path integral of gradients from a baseline to the input.

Sundararajan, Taly, Yan 2017, "Axiomatic Attribution for Deep Networks",
https://arxiv.org/abs/1703.01365. With a fixed ``n_steps``, the computation of
``captum.attr.IntegratedGradients`` with Captum's quadrature rules
(``approximation_parameters``); the tests check the two equal. The path points of a batch
go through the model in as few passes as memory allows, with one backward pass per chunk of
steps (Captum also builds a gradient seed per output row, which costs as much as the model
on small inputs). The convergence delta (sum of attributions minus f(x) - f(baseline)) is
kept per sample.

``n_steps: auto`` refines each sample's rule until its attributions add up to
``f(x) - f(baseline)`` within ``tolerance`` (relative): nested midpoint rules of
``min_steps``, 3x, 9x ... nodes up to ``max_steps``, every gradient reused
(``auditor.explainers.quadrature``). The nodes each sample used are kept
per sample (``steps``), and ``above_tolerance`` marks the samples that stopped at the last
rule with the error still above the tolerance.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field, ValidationInfo, field_validator, model_validator
from torch import nn

from auditor.explainers.base import Explainer
from auditor.explainers.baselines import BaselineKind, make_baseline
from auditor.explainers.passes import rows_per_pass
from auditor.explainers.quadrature import adaptive_integrated_gradients, path_gradient_sum
from auditor.plugin import Params

Method = Literal[
    "gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"
]
#: Options of ``n_steps: auto`` only.
AUTO_OPTIONS = ("tolerance", "min_steps", "max_steps")


class IntegratedGradientsParams(Params):
    n_steps: Annotated[int, Field(gt=0, le=10_000)] | Literal["auto"] = Field(
        32,
        description="Integration steps, or 'auto': per sample, nested midpoint rules until "
        "the attributions add up to f(x) - f(baseline) within tolerance.",
    )
    method: Method = Field("gausslegendre", description="Quadrature rule (fixed n_steps).")
    baseline: BaselineKind = Field("zeros", description="zeros | mean | blur | uniform")
    internal_batch_size: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Path points per forward pass (default: sized from the input and the "
        "model's activations, see auditor/explainers/passes.py).",
    )
    tolerance: float = Field(
        0.01,
        gt=0.0,
        le=1e6,
        description="n_steps auto: largest relative completeness error "
        "|sum(attributions) - (f(x) - f(baseline))| / |f(x) - f(baseline)| per sample.",
    )
    min_steps: int = Field(
        27,
        ge=1,
        le=10_000,
        description="n_steps auto: steps of the first rule; later rules have 3x as many.",
    )
    max_steps: int = Field(
        243,
        ge=1,
        le=100_000,
        description="n_steps auto: most steps per sample (the last rule is the largest "
        "min_steps * 3^k within it).",
    )

    @field_validator(*AUTO_OPTIONS, "method")
    @classmethod
    def _fits_n_steps(cls, value: object, info: ValidationInfo) -> object:
        """An option given for the other kind of n_steps is an error, not ignored."""
        n_steps = info.data.get("n_steps")
        if n_steps is None:  # n_steps itself is invalid: that is the error to report
            return value
        if info.field_name == "method" and n_steps == "auto":
            raise ValueError("applies to a fixed n_steps only; n_steps auto uses midpoint rules")
        if info.field_name != "method" and n_steps != "auto":
            raise ValueError(f"applies to n_steps: auto only (n_steps is {n_steps})")
        return value

    @model_validator(mode="after")
    def _steps_in_order(self) -> IntegratedGradientsParams:
        if self.n_steps == "auto" and self.max_steps < self.min_steps:
            raise ValueError(
                f"max_steps ({self.max_steps}) is below min_steps ({self.min_steps}), "
                "the steps of the first rule"
            )
        return self


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

    ``rows`` bounds the path points per pass (default: ``rows_per_pass``).
    """
    from captum.attr._utils.approximation_methods import approximation_parameters

    sizes_of, alphas_of = approximation_parameters(method)
    difference = inputs - baselines
    total = path_gradient_sum(
        model,
        baselines,
        difference,
        targets,
        alphas_of(n_steps),
        sizes_of(n_steps),
        rows or rows_per_pass(model, inputs),
    )
    return total * difference


class IntegratedGradients(Explainer):
    """Integrated Gradients from a baseline (Sundararajan et al. 2017)."""

    name: ClassVar[str] = "integrated_gradients"
    differentiable = True
    on_device = True
    Params = IntegratedGradientsParams
    stats = ("convergence_delta", "steps", "above_tolerance")

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        removed = self.context.removed  # text: every token removed, padding kept
        baseline = (
            removed(inputs)
            if removed is not None
            else make_baseline(p.baseline, inputs, self.context.background, seed=self.context.seed)
        )
        if p.n_steps == "auto":
            return self._adaptive(inputs, baseline, targets)
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

    def _adaptive(
        self, inputs: torch.Tensor, baseline: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        p = self.params
        result = adaptive_integrated_gradients(
            self.model,
            inputs,
            baseline,
            targets,
            p.tolerance,
            p.min_steps,
            p.max_steps,
            p.internal_batch_size,
        )
        attributions = result.attributions
        self.record(
            convergence_delta=attributions.flatten(1).sum(1) - (result.f_x - result.f_b),
            steps=result.steps,
            above_tolerance=result.above(p.tolerance),
        )
        return attributions
