"""Summaries of per-sample values: mean, std and a 95% confidence interval."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from auditor.results import Summary


def summarize(values: Sequence[float] | np.ndarray) -> Summary:
    """Mean, sample std, min, max and a Student-t 95% interval of the mean."""
    # Student's t quantile from scipy.special (stats.t.ppf calls it): importing scipy.stats
    # costs about 1 s more. On first use: commands that only read specs need no scipy.
    from scipy.special import stdtrit

    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[np.isfinite(array)]
    n = int(array.size)
    if n == 0:  # JSON has no NaN: an empty summary is all null
        return Summary(mean=None, std=None, min=None, max=None, ci95=(None, None), n=0)
    mean = float(array.mean())
    std = float(array.std(ddof=1)) if n > 1 else 0.0
    half = float(stdtrit(n - 1, 0.975) * std / math.sqrt(n)) if n > 1 else 0.0
    return Summary(
        mean=mean,
        std=std,
        min=float(array.min()),
        max=float(array.max()),
        ci95=(mean - half, mean + half),
        n=n,
    )
