"""Max-sensitivity: the largest change of an explanation under a small input perturbation.

Yeh, Hsieh, Suggala, Inouye, Ravikumar 2019, "On the (In)fidelity and Sensitivity of
Explanations", NeurIPS, https://arxiv.org/abs/1901.09392. Engine:
``captum.metrics.sensitivity_max``: the maximum over ``n_perturb`` points drawn uniformly
from an L-infinity ball of radius ``radius`` times the sample's value range of
``||e(x) - e(x')|| / ||e(x)||`` (Frobenius norm), where ``e`` is the explainer run again
with its params and the run's seed on the audited model. The points come from a
generator seeded with the run's seed; lower is better. Each sample costs ``n_perturb + 1``
explanations, so few samples are measured by default.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from auditor.metrics.base import Metric, MetricContext, MetricOutput
from auditor.metrics.infidelity import examples_per_batch, input_span
from auditor.metrics.perturb import explained_batches
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


class SensitivityMax(Metric):
    """Largest relative change of the explanation in a small ball (Yeh et al. 2019)."""

    name: ClassVar[str] = "sensitivity_max"
    #: Noise on token ids is not a small change of a text: images and tables only.
    modalities = frozenset({"image", "tabular"})
    Params = SensitivityMaxParams
    direction: ClassVar[Literal["higher", "lower"]] = "lower"
    value_range: ClassVar[tuple[float, float] | None] = (0.0, float("inf"))  # a ratio of norms
    needs: ClassVar[tuple[str, ...]] = ("re-runs the explainer",)

    def measure(self, ctx: MetricContext) -> MetricOutput:
        from captum.metrics import sensitivity_max

        p = self.params
        run = ctx.explainer
        if run is None:
            raise ValueError("sensitivity_max measures one explainer; none was given")
        explainer = run.rebuild(ctx.model, ctx.context)
        generator = torch.Generator().manual_seed(ctx.context.seed)

        def perturb(inputs: torch.Tensor) -> torch.Tensor:
            unit = torch.rand(inputs.shape, generator=generator, dtype=inputs.dtype) * 2 - 1
            return inputs + unit * (p.radius * input_span(inputs))

        def explain(
            inputs: torch.Tensor | tuple[torch.Tensor], target: torch.Tensor
        ) -> torch.Tensor | tuple[torch.Tensor]:
            # Captum passes the original inputs as a 1-tuple and expects a tuple back; the
            # perturbed ones come bare.
            if isinstance(inputs, tuple):
                return (explainer.explain(inputs[0], target),)
            return explainer.explain(inputs, target)

        parts = []
        for batch in explained_batches(ctx, p.samples):
            score = sensitivity_max(
                explain,
                batch.inputs,
                perturb_func=perturb,
                n_perturb_samples=p.n_perturb,
                max_examples_per_batch=examples_per_batch(
                    len(batch.inputs), p.n_perturb, p.max_batch
                ),
                target=batch.targets,
            )
            parts.append(score.detach().to(torch.float64).numpy())
        values = np.concatenate(parts)
        return MetricOutput(
            per_sample=values,
            note=(
                f"{len(values)} samples, {p.n_perturb} perturbations each, uniform in an "
                f"L-infinity ball of radius {p.radius:g} x the sample's range; "
                f"relative Frobenius norm of the change."
            ),
        )
