"""Deletion: how fast the target's probability falls as top-attributed features are removed.

Petsiuk, Das, Saenko 2018, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC, https://arxiv.org/abs/1806.07421. Features (image patches, tabular
columns) are set to a baseline (zeros for images, the slice mean for tabular data by
default) in the order of their attribution, in steps; the area
under the target-probability curve is the score (lower is better). The same curve for a
seeded random order is reported, and ``gain = random_auc - auc`` (positive: the
explanation finds the evidence faster than chance). See ``auditor.metrics.perturb``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from auditor.explainers.baselines import BaselineKind
from auditor.metrics.perturb import CurveParams, PerturbationCurve


class DeletionParams(CurveParams):
    baseline: BaselineKind | None = Field(
        None,
        description="Value removed features take: zeros | mean (of the slice) | blur | "
        "uniform. Default: zeros for images, the slice mean for tabular data.",
    )


class Deletion(PerturbationCurve):
    """Area under the probability curve as top features are removed (Petsiuk et al. 2018)."""

    name: ClassVar[str] = "deletion"
    Params = DeletionParams
    direction: ClassVar[Literal["higher", "lower"]] = "lower"
    value_range: ClassVar[tuple[float, float] | None] = (0.0, 1.0)  # area under a probability curve
    reveal: ClassVar[bool] = False
    default_baseline: ClassVar[dict[str, BaselineKind]] = {"image": "zeros", "tabular": "mean"}
