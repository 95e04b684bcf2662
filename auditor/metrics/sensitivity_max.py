"""Max-sensitivity: the largest change of an explanation under a small input perturbation.

Yeh, Hsieh, Suggala, Inouye, Ravikumar 2019, "On the (In)fidelity and Sensitivity of
Explanations", NeurIPS, https://arxiv.org/abs/1901.09392. Engine:
``captum.metrics.sensitivity_max``: the maximum over ``n_perturb`` points drawn uniformly
from an L-infinity ball of radius ``radius`` times the sample's value range of
``||e(x) - e(x')|| / ||e(x)||`` (Frobenius norm), where ``e`` is the explainer run again
with its params and the run's seed on the audited model. Each sample's points come from a
generator of its own (the run's seed and the sample's position: ``auditor.metrics.noise``);
lower is better. Each sample costs ``n_perturb + 1``
explanations, so few samples are measured by default.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from auditor.explainers.base import Explainer
from auditor.metrics.base import (
    BatchMetric,
    ExplainedBatch,
    MetricContext,
    MetricOutput,
    PerSample,
)
from auditor.metrics.infidelity import examples_per_batch, input_span
from auditor.metrics.noise import SampleNoise
from auditor.plugin import Params


class SensitivityMaxParams(Params):
    samples: int = Field(16, ge=1, le=1_000_000, description="First samples of the slice measured.")
    n_perturb: int = Field(8, ge=1, le=10_000, description="Random perturbations per sample.")
    radius: float = Field(
        0.02,
        gt=0.0,
        le=10.0,
        description="Radius of the L-infinity ball as a fraction of each sample's value range.",
    )
    max_batch: int = Field(
        64,
        ge=1,
        le=1_000_000,
        description="Perturbed inputs explained per call (at least a batch).",
    )


class SensitivityMax(BatchMetric):
    """Largest relative change of the explanation in a small ball (Yeh et al. 2019)."""

    name: ClassVar[str] = "sensitivity_max"
    #: Noise on token ids is not a small change of a text: images and tables only.
    modalities = frozenset({"image", "tabular"})
    Params = SensitivityMaxParams
    direction: ClassVar[Literal["higher", "lower"]] = "lower"
    value_range: ClassVar[tuple[float, float] | None] = (0.0, float("inf"))  # a ratio of norms
    needs: ClassVar[tuple[str, ...]] = ("re-runs the explainer",)

    def prepare(self, ctx: MetricContext) -> Explainer:
        """The explainer, rebuilt with its params on the audited model."""
        run = ctx.explainer
        if run is None:
            raise ValueError("sensitivity_max measures one explainer; none was given")
        return run.rebuild(ctx.model, ctx.context)

    def measure_batch(self, ctx: MetricContext, prepared: Any, batch: ExplainedBatch) -> PerSample:
        from captum.metrics import sensitivity_max

        p, explainer = self.params, prepared
        noise = SampleNoise(ctx.context.seed, self.name, batch.positions, torch.rand)

        def perturb(inputs: torch.Tensor) -> torch.Tensor:
            unit = noise.draw(inputs) * 2 - 1
            return inputs + unit * (p.radius * input_span(inputs))

        def explain(
            inputs: torch.Tensor | tuple[torch.Tensor], target: torch.Tensor
        ) -> torch.Tensor | tuple[torch.Tensor]:
            # Captum passes the original inputs as a 1-tuple and expects a tuple back; the
            # perturbed ones come bare.
            if isinstance(inputs, tuple):
                return (explainer.explain(inputs[0], target),)
            return explainer.explain(inputs, target)

        score = sensitivity_max(
            explain,
            batch.inputs,
            perturb_func=perturb,
            n_perturb_samples=p.n_perturb,
            max_examples_per_batch=examples_per_batch(len(batch.inputs), p.n_perturb, p.max_batch),
            target=batch.targets,
        )
        return {"sensitivity": score.detach().to(torch.float64).numpy()}

    def finish(self, ctx: MetricContext, values: PerSample) -> MetricOutput:
        p = self.params
        scores = values["sensitivity"]
        return MetricOutput(
            per_sample=scores,
            note=(
                f"{len(scores)} samples, {p.n_perturb} perturbations each, uniform in an "
                f"L-infinity ball of radius {p.radius:g} x the sample's range (drawn per "
                f"sample); relative Frobenius norm of the change."
            ),
        )
