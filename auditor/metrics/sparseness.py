"""Sparseness: how concentrated an attribution is, as the Gini index of |attribution|.

Chalasani, Chen, Chowdhury, Wu, Jha 2020, "Concise Explanations of Neural Networks using
Adversarial Training", ICML, https://arxiv.org/abs/1810.06583; the Gini index as a
sparsity measure: Hurley, Rickard 2009, "Comparing Measures of Sparsity",
https://arxiv.org/abs/0811.4706. Per sample, over every element of the attribution
(channels included): 0 when all magnitudes are equal, ``(n - 1) / n`` when one element
holds everything. An all-zero attribution has no defined index (NaN, left out of the
summary and counted in the note). Higher is better (more concise).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from auditor.metrics.base import Metric, MetricContext, MetricOutput, explained_batches
from auditor.metrics.similarity import gini
from auditor.plugin import Params


class SparsenessParams(Params):
    samples: int | None = Field(
        None, ge=1, le=10_000_000, description="First samples of the slice measured (None: all)."
    )


class Sparseness(Metric):
    """Gini index of |attribution| per sample (Chalasani et al. 2020); higher is sparser."""

    name: ClassVar[str] = "sparseness"
    Params = SparsenessParams
    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    value_range: ClassVar[tuple[float, float] | None] = (0.0, 1.0)  # a Gini index

    def measure(self, ctx: MetricContext) -> MetricOutput:
        removed = ctx.context.removed  # text: over each sample's own tokens, not its padding
        values = []
        for batch in explained_batches(ctx, self.params.samples):
            attributions = batch.attributions.numpy()
            if removed is None:
                values += [gini(a) for a in attributions]
            else:
                live = (removed(batch.inputs) != batch.inputs).numpy()
                values += [gini(a[keep]) for a, keep in zip(attributions, live, strict=True)]
        values = np.asarray(values)
        zero = int(np.isnan(values).sum())
        over = "every attribution element" if removed is None else "each text's own tokens"
        note = f"{len(values)} samples; Gini index over {over}"
        if zero:
            note += f"; {zero} all-zero attributions have no index and are left out"
        return MetricOutput(per_sample=values, note=note + ".")
