"""Insertion: how fast the target's probability rises as top-attributed features are revealed.

Petsiuk, Das, Saenko 2018, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC, https://arxiv.org/abs/1806.07421. Starting from a baseline (a blurred copy
of the image by default, as in the paper; the slice mean for tabular data), features are
put back in the order of their attribution, in steps; the area under the
target-probability curve is the score (higher is better). The same curve for a seeded
random order is reported, and ``gain = auc - random_auc``. See ``auditor.metrics.perturb``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from auditor.explainers.baselines import BaselineKind
from auditor.metrics.perturb import CurveParams, PerturbationCurve


class InsertionParams(CurveParams):
    baseline: BaselineKind | None = Field(
        None,
        description="Canvas features are revealed on: zeros | mean (of the slice) | blur | "
        "uniform. Default: blur for images, mean for tabular data.",
    )


class Insertion(PerturbationCurve):
    """Area under the probability curve as top features are revealed (Petsiuk et al. 2018)."""

    name: ClassVar[str] = "insertion"
    Params = InsertionParams
    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    value_range: ClassVar[tuple[float, float] | None] = (0.0, 1.0)  # area under a probability curve
    reveal: ClassVar[bool] = True
    default_baseline: ClassVar[dict[str, BaselineKind]] = {"image": "blur", "tabular": "mean"}
