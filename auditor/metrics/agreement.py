"""Agreement: do the explainers rank the features the same way?

The disagreement problem: Krishna, Han, Gu, Pombra, Jabbari, Wu, Lakkaraju 2022, "The
Disagreement Problem in Explainable Machine Learning: A Practitioner's Perspective",
https://arxiv.org/abs/2202.01602. For every pair of local explainers and every measured
sample, the features (pixels with channels averaged, or tabular columns) are ranked by
|attribution|; the pair's agreement is Kendall's tau-b of the two rankings
(``scipy.stats.kendalltau``) and the top-k overlap (the share of one explainer's ``k``
most important features among the other's), each averaged over the samples. The matrix
has 1 on the diagonal; an undefined value (a constant map) is left out of the means.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from auditor.metrics.base import Metric, MetricContext, MetricOutput, NotApplicable
from auditor.metrics.similarity import feature_map, kendall, nanmean, top_k_overlap
from auditor.plugin import Params


class AgreementParams(Params):
    samples: int = Field(64, ge=1, le=1_000_000, description="First samples of the slice compared.")
    top_k: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="Features in the top-k overlap. Default: a tenth of the features (at least 1).",
    )


class Agreement(Metric):
    """Pairwise Kendall tau and top-k overlap of the explainers' rankings (higher agrees)."""

    name: ClassVar[str] = "agreement"
    Params = AgreementParams
    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    value_range: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)  # Kendall's tau
    scope: ClassVar[Literal["explainer", "cross", "model"]] = "cross"

    def measure(self, ctx: MetricContext) -> MetricOutput:
        runs = [r for r in ctx.explainers.values() if r.cls.scope == "local"]
        if len(runs) < 2:
            raise NotApplicable(
                f"agreement compares two or more local explainers; this run has {len(runs)}"
            )
        modality = ctx.context.modality
        n_features = feature_map(np.zeros(ctx.context.input_shape), modality).size
        k = self.params.top_k or max(1, math.ceil(n_features / 10))
        removed = ctx.context.removed  # text: only each sample's own tokens are ranked
        ks: list[int] = []
        pairs = list(combinations(range(len(runs)), 2))
        tau: dict[tuple[int, int], list[float]] = {pair: [] for pair in pairs}
        top: dict[tuple[int, int], list[float]] = {pair: [] for pair in pairs}
        per_sample: list[float] = []
        for positions, inputs in ctx.data.batches(limit=self.params.samples):
            maps = [
                [feature_map(a, modality) for a in np.asarray(run.attributions[positions])]
                for run in runs
            ]
            live = None if removed is None else (removed(inputs) != inputs).numpy()
            for s in range(len(positions)):
                sample = []
                keep = slice(None) if live is None else live[s].reshape(-1)
                size = maps[0][s].size if live is None else int(live[s].sum())
                k_s = self.params.top_k or max(1, math.ceil(size / 10)) if live is not None else k
                ks.append(k_s)
                for i, j in pairs:
                    a, b = maps[i][s].reshape(-1)[keep], maps[j][s].reshape(-1)[keep]
                    tau[i, j].append(kendall(a, b))
                    top[i, j].append(top_k_overlap(a, b, k_s))
                    sample.append(tau[i, j][-1])
                per_sample.append(nanmean(sample))
        kendall_matrix = symmetric(len(runs), {pair: nanmean(v) for pair, v in tau.items()})
        topk_matrix = symmetric(len(runs), {pair: nanmean(v) for pair, v in top.items()})
        return MetricOutput(
            per_sample=np.asarray(per_sample),
            values={
                "mean_kendall": nanmean([nanmean(v) for v in tau.values()]),
                "mean_topk": nanmean([nanmean(v) for v in top.values()]),
            },
            matrix={
                "labels": [r.id for r in runs],
                "kendall": kendall_matrix,
                "topk": topk_matrix,
                "values": kendall_matrix,
                "k": k,
            },
            note=(
                f"{len(per_sample)} samples, {len(runs)} explainers; rankings of |attribution| "
                + (
                    f"over {n_features} features; top-{k} overlap."
                    if removed is None
                    else "over each text's own tokens (padding left out); top-k overlap with "
                    "k a tenth of the text's tokens, rounded up."
                )
                + f" Per sample: the mean Kendall tau over the {len(pairs)} pairs."
            ),
        )


def symmetric(n: int, pairs: dict[tuple[int, int], float]) -> list[list[float | None]]:
    """An n x n matrix with 1 on the diagonal; NaN becomes None (JSON has no NaN)."""
    matrix: list[list[float | None]] = [
        [1.0 if i == j else None for j in range(n)] for i in range(n)
    ]
    for (i, j), value in pairs.items():
        cell = None if math.isnan(value) else round(value, 6)
        matrix[i][j] = matrix[j][i] = cell
    return matrix
