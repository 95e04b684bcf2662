"""Infidelity: how badly attributions predict the output change under random perturbations.

Yeh, Hsieh, Suggala, Inouye, Ravikumar 2019, "On the (In)fidelity and Sensitivity of
Explanations", NeurIPS, https://arxiv.org/abs/1901.09392. Engine:
``captum.metrics.infidelity``: ``E_I[(I . attribution - (f(x) - f(x - I)))^2]`` for the
target's logit ``f``, with ``I`` Gaussian noise of standard deviation ``sigma`` times the
sample's value range (max - min), drawn for each sample from a generator of its own
(the run's seed and the sample's position: ``auditor.metrics.noise``). With
``normalize`` the attributions are first scaled by the least-squares factor, so that the
score does not depend on their scale (the paper's scale-invariant form); lower is better.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from auditor.metrics.base import (
    BatchMetric,
    ExplainedBatch,
    MetricContext,
    MetricOutput,
    PerSample,
)
from auditor.metrics.noise import SampleNoise
from auditor.plugin import Params


class InfidelityParams(Params):
    samples: int = Field(32, ge=1, le=1_000_000, description="First samples of the slice measured.")
    n_perturb: int = Field(32, ge=1, le=100_000, description="Random perturbations per sample.")
    sigma: float = Field(
        0.1,
        gt=0.0,
        le=10.0,
        description="Noise standard deviation as a fraction of each sample's value range.",
    )
    normalize: bool = Field(
        True, description="Scale attributions by the least-squares factor first (scale-free)."
    )
    max_batch: int = Field(
        256, ge=1, le=1_000_000, description="Perturbed inputs per forward pass of the model."
    )


class Infidelity(BatchMetric):
    """Expected squared error of attributions as predictors of output changes (Yeh 2019)."""

    name: ClassVar[str] = "infidelity"
    #: Noise on token ids is not a small change of a text: images and tables only.
    modalities = frozenset({"image", "tabular"})
    Params = InfidelityParams
    direction: ClassVar[Literal["higher", "lower"]] = "lower"
    value_range: ClassVar[tuple[float, float] | None] = (0.0, float("inf"))  # a mean squared error
    needs: ClassVar[tuple[str, ...]] = ("model forward passes",)

    def measure_batch(self, ctx: MetricContext, prepared: Any, batch: ExplainedBatch) -> PerSample:
        from captum.metrics import infidelity

        p = self.params
        noise = SampleNoise(ctx.context.seed, self.name, batch.positions)

        def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            drawn = noise.draw(inputs) * (p.sigma * input_span(inputs))
            return drawn, inputs - drawn

        with torch.no_grad():
            score = infidelity(
                ctx.model,
                perturb,
                batch.inputs,
                batch.attributions,
                target=batch.targets,
                n_perturb_samples=p.n_perturb,
                max_examples_per_batch=examples_per_batch(
                    len(batch.inputs), p.n_perturb, p.max_batch
                ),
                normalize=p.normalize,
            )
        return {"infidelity": score.detach().to(torch.float64).numpy()}

    def finish(self, ctx: MetricContext, values: PerSample) -> MetricOutput:
        p = self.params
        scores = values["infidelity"]
        return MetricOutput(
            per_sample=scores,
            note=(
                f"{len(scores)} samples, {p.n_perturb} Gaussian perturbations each (std "
                f"{p.sigma:g} x the sample's range, drawn per sample), target logit"
                f"{', attributions rescaled by the least-squares factor' if p.normalize else ''}."
            ),
        )


def input_span(inputs: torch.Tensor) -> torch.Tensor:
    """Each sample's max - min, shaped to broadcast over it (1 where a sample is constant)."""
    flat = inputs.reshape(len(inputs), -1)
    spread = flat.max(dim=1).values - flat.min(dim=1).values
    spread = torch.where(spread > 0, spread, torch.ones_like(spread))
    return spread.view(-1, *([1] * (inputs.dim() - 1)))


def examples_per_batch(batch: int, n_perturb: int, max_batch: int) -> int:
    """Captum's ``max_examples_per_batch``: perturbed inputs per pass, at least the batch."""
    return max(batch, min(max_batch, batch * n_perturb))
