"""Stability: do attributions stay the same under small input noise, and across seeds?

Robustness of explanations in the sense of Alvarez-Melis, Jaakkola 2018, "On the
Robustness of Interpretability Methods", https://arxiv.org/abs/1806.08049 (and the
explanation "continuity" of Montavon, Samek, Müller 2018, "Methods for Interpreting and
Understanding Deep Neural Networks", https://arxiv.org/abs/1706.07979). Each measured
sample gets Gaussian noise of standard deviation ``sigma`` times its value range (max -
min), drawn from a generator seeded with the run's seed; the explainer runs again (same
params, same seed, same targets) and its attributions are compared with the stored ones
by the Spearman rank correlation of |attribution| (images: per pixel, channels averaged)
or the cosine similarity of the signed attributions. For stochastic explainers (sampling,
noise, random baselines) the clean samples are also explained under the seed ``seed + 1``
and compared in the same way (``seed_similarity``). Higher is better.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from auditor.metrics.base import ExplainerRun, Metric, MetricContext, MetricOutput
from auditor.metrics.infidelity import input_span
from auditor.metrics.perturb import explained_batches
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


class Stability(Metric):
    """Similarity of attributions under small input noise and across seeds (higher is better)."""

    name: ClassVar[str] = "stability"
    #: Noise on token ids is not a small change of a text: images and tables only.
    modalities = frozenset({"image", "tabular"})
    Params = StabilityParams
    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    value_range: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)  # Spearman or cosine
    needs: ClassVar[tuple[str, ...]] = ("re-runs the explainer",)

    def measure(self, ctx: MetricContext) -> MetricOutput:
        p = self.params
        run = ctx.explainer
        if run is None:
            raise ValueError("stability measures one explainer; none was given")
        explainer = run.rebuild(ctx.model, ctx.context)
        reseeded = None
        if p.seeds == "always" or (p.seeds == "auto" and is_stochastic(run)):
            other = dataclasses.replace(ctx.context, seed=ctx.context.seed + 1)
            reseeded = run.rebuild(ctx.model, other)
        generator = torch.Generator().manual_seed(ctx.context.seed)
        noise_scores, seed_scores = [], []
        for batch in explained_batches(ctx, p.samples):
            noise = torch.randn(batch.inputs.shape, generator=generator)
            noisy = batch.inputs + noise * (p.sigma * input_span(batch.inputs))
            moved = explainer.explain(noisy, batch.targets)
            noise_scores += self.compare(batch.attributions, moved, ctx)
            if reseeded is not None:
                again = reseeded.explain(batch.inputs, batch.targets)
                seed_scores += self.compare(batch.attributions, again, ctx)
        values = {"noise_similarity": nanmean(noise_scores)}
        note = (
            f"{len(noise_scores)} samples; {p.similarity} similarity with Gaussian noise of "
            f"std {p.sigma:g} x the sample's range"
        )
        if reseeded is not None:
            values["seed_similarity"] = nanmean(seed_scores)
            note += f", and between seeds {ctx.context.seed} and {ctx.context.seed + 1}"
        return MetricOutput(per_sample=np.asarray(noise_scores), values=values, note=note + ".")

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
