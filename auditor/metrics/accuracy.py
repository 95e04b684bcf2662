"""Accuracy of the model on the audited slice, overall and per class.

The share of samples whose predicted class (the argmax of the logits, computed once by
the runner) equals the data's label; per class over the samples labelled with it. The
per-sample values are 1 (correct) or 0, so the summary's mean is the accuracy and its
interval a t-interval for a proportion. Higher is better.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from auditor.metrics.base import Metric, MetricContext, MetricOutput


class Accuracy(Metric):
    """Share of the slice the model classifies correctly, and per-class accuracy."""

    name: ClassVar[str] = "accuracy"
    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    value_range: ClassVar[tuple[float, float] | None] = (0.0, 1.0)  # share of correct predictions
    scope: ClassVar[Literal["explainer", "cross", "model"]] = "model"

    def measure(self, ctx: MetricContext) -> MetricOutput:
        predictions = ctx.predictions
        correct = predictions.correct.astype(np.float64)
        names = ctx.context.class_names
        values = {"value": float(correct.mean()) if len(correct) else float("nan")}
        for label in np.unique(predictions.labels):
            name = names[label] if label < len(names) else str(label)
            values[f"per_class_accuracy.{name}"] = float(
                correct[predictions.labels == label].mean()
            )
        return MetricOutput(
            per_sample=correct,
            values=values,
            note=(
                f"{int(correct.sum())} of {len(correct)} samples classified correctly; "
                f"per-class accuracy over the {len(values) - 1} classes present in the slice."
            ),
        )
