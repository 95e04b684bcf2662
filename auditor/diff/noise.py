"""Whether a metric's change between two runs is larger than the runs' noise.

Two tests, the stronger where it applies:

* paired: the Wilcoxon signed-rank test (Wilcoxon 1945, "Individual comparisons by ranking
  methods", Biometrics Bulletin 1(6), https://doi.org/10.2307/3001968) on the per-sample
  values of samples both runs measured (same data slice, so row i is one sample in both);
  the change is real when p < 0.05;
* unpaired: the two 95% confidence intervals of the means do not overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05


@dataclass(frozen=True)
class NoiseTest:
    method: str  # "wilcoxon", "ci95" or "none"
    significant: bool | None  # None: could not be decided
    p_value: float | None = None
    pairs: int = 0
    note: str = ""


def intervals_apart(
    a: tuple[float | None, float | None], b: tuple[float | None, float | None]
) -> bool | None:
    """True when two intervals do not overlap; None when either bound is missing."""
    values = [a[0], a[1], b[0], b[1]]
    if any(v is None or not math.isfinite(v) for v in values):
        return None
    lo_a, hi_a, lo_b, hi_b = (float(v) for v in values)  # type: ignore[arg-type]
    return hi_a < lo_b or hi_b < lo_a


def wilcoxon_paired(before: np.ndarray, after: np.ndarray) -> NoiseTest:
    """Paired signed-rank test over the pairs where both values are finite."""
    a = np.asarray(before, dtype=np.float64).reshape(len(before), -1).mean(axis=1)
    b = np.asarray(after, dtype=np.float64).reshape(len(after), -1).mean(axis=1)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    pairs = int(keep.sum())
    if pairs == 0:
        return NoiseTest("wilcoxon", None, None, 0, "no sample has a finite value in both runs")
    diff = b - a
    if not np.any(diff != 0):
        return NoiseTest("wilcoxon", False, 1.0, pairs, "every shared sample has the same value")
    from scipy import stats

    p = float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)
    return NoiseTest("wilcoxon", p < ALPHA, p, pairs)


def ci_test(
    a: tuple[float | None, float | None], b: tuple[float | None, float | None]
) -> NoiseTest:
    apart = intervals_apart(a, b)
    if apart is None:
        return NoiseTest("none", None, note="a 95% interval is missing")
    return NoiseTest("ci95", apart, note="95% intervals " + ("apart" if apart else "overlap"))
