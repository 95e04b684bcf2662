"""Fidelity: how well a surrogate explainer's simple model reproduces the audited model.

Global surrogates (model extraction): Craven, Shavlik 1996, "Extracting Tree-Structured
Representations of Trained Networks", NeurIPS 8; Bastani, Kim, Bastani 2017,
"Interpretability via Model Extraction", https://arxiv.org/abs/1706.09773. Local
surrogates: Ribeiro, Singh, Guestrin 2016, "'Why Should I Trust You?'",
https://arxiv.org/abs/1602.04938.

The surrogates measure their own fidelity when they are fitted, on data the fit did not
see, and this metric reports it rather than refitting:
- ``surrogate_linear``: R^2 of the target logit on the held-out part of the slice;
- ``surrogate_tree``, ``surrogate_forest``: accuracy in reproducing the model's predicted
  class on the held-out part;
- ``lime``: per sample, the kernel-weighted R^2 of the local linear model on its
  perturbations (an in-sample fit; LIME keeps no held-out points).
Global surrogates give one value for the slice (``values.value``, and every fidelity the
explainer recorded); LIME gives per-sample values. Higher is better.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from auditor.metrics.base import ExplainerRun, Metric, MetricContext, MetricOutput, NotApplicable

#: The held-out fidelity that is the metric's value, per global surrogate type.
GLOBAL_MAIN = {
    "surrogate_linear": "r2",
    "surrogate_tree": "accuracy",
    "surrogate_forest": "accuracy",
}
LOCAL_STAT = {"lime": "r2"}


class Fidelity(Metric):
    """Held-out fidelity of global surrogates; local fit R^2 of LIME (higher is better)."""

    name: ClassVar[str] = "fidelity"
    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    # R^2 (at most 1, unbounded below) or an accuracy.
    value_range: ClassVar[tuple[float, float] | None] = (float("-inf"), 1.0)
    explainer_types: ClassVar[frozenset[str] | None] = frozenset({*GLOBAL_MAIN, *LOCAL_STAT})
    needs: ClassVar[tuple[str, ...]] = ("a surrogate explainer",)

    def applies_to(self, explainer: ExplainerRun, modality: str) -> bool:
        # Unlike the other metrics, global explainers are measured too: surrogates are global.
        return modality in self.modalities and explainer.type in (self.explainer_types or ())

    def measure(self, ctx: MetricContext) -> MetricOutput:
        run = ctx.explainer
        if run is None:
            raise ValueError("fidelity measures one explainer; none was given")
        if run.type in LOCAL_STAT:
            return local_fidelity(run, LOCAL_STAT[run.type])
        if run.type in GLOBAL_MAIN:
            return global_fidelity(run, GLOBAL_MAIN[run.type])
        raise NotApplicable(f"fidelity applies to surrogate explainers, not to {run.type}")


def local_fidelity(run: ExplainerRun, stat: str) -> MetricOutput:
    values = run.stats.get(stat)
    if not values:
        raise NotApplicable(f"{run.id} recorded no per-sample '{stat}' to report")
    scores = np.asarray(values, dtype=np.float64)
    return MetricOutput(
        per_sample=scores,
        note=(
            f"{len(scores)} samples; the kernel-weighted R^2 of each local linear model on its "
            f"own perturbations (in-sample)."
        ),
    )


def global_fidelity(run: ExplainerRun, main: str) -> MetricOutput:
    # ExplainerRun.fidelity: the GlobalExplanation's fidelity, passed on by the runner.
    fidelity: dict[str, float] = dict(getattr(run, "fidelity", None) or {})
    if main not in fidelity:
        raise NotApplicable(
            f"{run.id} did not record its held-out fidelity '{main}' "
            f"(recorded: {', '.join(sorted(fidelity)) or 'none'})"
        )
    what = "R^2 of the target logit" if main == "r2" else "accuracy on the model's predictions"
    return MetricOutput(
        values={"value": float(fidelity[main]), **{k: float(v) for k, v in fidelity.items()}},
        note=f"Held-out {what}, measured when the surrogate was fitted on the slice.",
    )
