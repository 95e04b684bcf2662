"""Stability: do attributions stay the same under small input noise, and across seeds?

Robustness of explanations in the sense of Alvarez-Melis, Jaakkola 2018, "On the
Robustness of Interpretability Methods", https://arxiv.org/abs/1806.08049 (and the
explanation "continuity" of Montavon, Samek, Müller 2018, "Methods for Interpreting and
Understanding Deep Neural Networks", https://arxiv.org/abs/1706.07979). Each measured
sample gets Gaussian noise of standard deviation ``sigma`` times its value range (max -
min), drawn from a generator of its own (the run's seed and the sample's position:
``auditor.metrics.noise``); the explainer runs again (same
params, same seed, same targets) and its attributions are compared with the stored ones
by the Spearman rank correlation of |attribution| (images: per pixel, channels averaged)
or the cosine similarity of the signed attributions. For stochastic explainers (sampling,
noise, random baselines) the clean samples are also explained under the seed ``seed + 1``
and compared in the same way (``seed_similarity``). Higher is better.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from auditor.explainers.base import Explainer
from auditor.metrics.base import (
    BatchMetric,
    ExplainedBatch,
    ExplainerRun,
    MetricContext,
    MetricOutput,
    PerSample,
)
from auditor.metrics.infidelity import input_span
from auditor.metrics.noise import SampleNoise
from auditor.metrics.similarity import cosine, feature_map, nanmean, spearman
from auditor.plugin import Params

#: Explainer types whose output depends on the seed (random draws of samples or noise).
STOCHASTIC_TYPES = frozenset(
    {
        "smoothgrad",
        "lime",
        "gradient_shap",
        "shap_gradient",
        "kernel_shap",
        "deep_shap",
        "shap_deep",
    }
)


class StabilityParams(Params):
    samples: int = Field(32, ge=1, le=1_000_000, description="First samples of the slice measured.")
    sigma: float = Field(
        0.02,
        ge=0.0,
        le=10.0,
        description="Noise standard deviation as a fraction of each sample's value range.",
    )
    similarity: Literal["spearman", "cosine"] = Field(
        "spearman",
        description="Spearman of |attribution| per feature, or cosine of the signed attributions.",
    )
    seeds: Literal["auto", "always", "never"] = Field(
        "auto",
        description="Also compare two seeds: auto for stochastic explainers only, always, never.",
    )


class Stability(BatchMetric):
    """Similarity of attributions under small input noise and across seeds (higher is better)."""

    name: ClassVar[str] = "stability"
    #: Noise on token ids is not a small change of a text: images and tables only.
    modalities = frozenset({"image", "tabular"})
    Params = StabilityParams
    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    value_range: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)  # Spearman or cosine
    needs: ClassVar[tuple[str, ...]] = ("re-runs the explainer",)

    def prepare(self, ctx: MetricContext) -> tuple[Explainer, Explainer | None]:
        """The explainer rebuilt, and under the seed ``seed + 1`` when seeds are compared."""
        run = ctx.explainer
        if run is None:
            raise ValueError("stability measures one explainer; none was given")
        explainer = run.rebuild(ctx.model, ctx.context)
        reseeded = None
        if self.compares_seeds(run):
            other = dataclasses.replace(ctx.context, seed=ctx.context.seed + 1)
            reseeded = run.rebuild(ctx.model, other)
        return explainer, reseeded

    def compares_seeds(self, run: ExplainerRun) -> bool:
        seeds = self.params.seeds
        return seeds == "always" or (seeds == "auto" and is_stochastic(run))

    def measure_batch(self, ctx: MetricContext, prepared: Any, batch: ExplainedBatch) -> PerSample:
        explainer, reseeded = prepared
        noise = SampleNoise(ctx.context.seed, self.name, batch.positions).draw(batch.inputs)
        noisy = batch.inputs + noise * (self.params.sigma * input_span(batch.inputs))
        moved = explainer.explain(noisy, batch.targets)
        out = {"noise": np.asarray(self.compare(batch.attributions, moved, ctx))}
        if reseeded is not None:
            again = reseeded.explain(batch.inputs, batch.targets)
            out["seed"] = np.asarray(self.compare(batch.attributions, again, ctx))
        return out

    def finish(self, ctx: MetricContext, values: PerSample) -> MetricOutput:
        p = self.params
        noise_scores = values["noise"]
        result = {"noise_similarity": nanmean(noise_scores)}
        note = (
            f"{len(noise_scores)} samples; {p.similarity} similarity with Gaussian noise of "
            f"std {p.sigma:g} x the sample's range (drawn per sample)"
        )
        if "seed" in values:
            result["seed_similarity"] = nanmean(values["seed"])
            note += f", and between seeds {ctx.context.seed} and {ctx.context.seed + 1}"
        return MetricOutput(per_sample=noise_scores, values=result, note=note + ".")

    def compare(self, before: torch.Tensor, after: torch.Tensor, ctx: MetricContext) -> list[float]:
        modality = ctx.context.modality
        if self.params.similarity == "cosine":
            return [cosine(a, b) for a, b in zip(before.numpy(), after.numpy(), strict=True)]
        return [
            spearman(feature_map(a, modality), feature_map(b, modality))
            for a, b in zip(before.numpy(), after.numpy(), strict=True)
        ]


def is_stochastic(run: ExplainerRun) -> bool:
    """Whether the explainer's output depends on the seed (sampling or a random baseline)."""
    return run.type in STOCHASTIC_TYPES or getattr(run.params, "baseline", None) == "uniform"
