"""Stability of a feature ranking between two runs, and of per-sample attribution maps.

Rankings are the ``ranking`` lists of results.json (feature names with importances, most
important first; every modality has them, text included), so no run needs its full
ranking array. Per-sample maps are ``|attribution|`` per unit of the modality
(``auditor.metrics.similarity.feature_map``), compared by Spearman rank correlation and,
for images, by SSIM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from auditor.metrics.similarity import feature_map, normalize_map, spearman, ssim_pairs

#: Persistence of rank-biased overlap: 0.9 puts about 86% of the weight on the top 10.
RBO_P = 0.9
#: Samples per block when per-sample maps are compared (bounds memory on large slices).
BLOCK = 256


def rank_biased_overlap(a: Sequence[str], b: Sequence[str], p: float = RBO_P) -> float:
    """Extrapolated rank-biased overlap of two rankings, cut to the shorter one's depth.

    Webber, Moffat, Zobel 2010, "A similarity measure for indefinite rankings", ACM TOIS
    28(4), https://doi.org/10.1145/1852102.1852106, eq. 30 (RBO_EXT at depth k):
    ``X_k/k * p^k + (1-p)/p * sum_{d=1..k} X_d/d * p^d`` with ``X_d`` the overlap of the
    two top-d lists. 1 for identical rankings, 0 for disjoint ones; NaN when one is empty.
    """
    k = min(len(a), len(b))
    if k == 0:
        return math.nan
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    overlap = 0
    total = 0.0
    for d in range(1, k + 1):
        x, y = a[d - 1], b[d - 1]
        if x == y:
            overlap += 1
        else:
            overlap += (x in seen_b) + (y in seen_a)
        seen_a.add(x)
        seen_b.add(y)
        total += overlap / d * p**d
    return float(overlap / k * p**k + (1 - p) / p * total)


def shared_kendall(before: dict[str, float], after: dict[str, float]) -> tuple[float, int]:
    """Kendall's tau-b of the importances of the features both rankings list, and their
    number (NaN below two shared features or when one side is constant)."""
    from auditor.metrics.similarity import kendall

    shared = [f for f in before if f in after]
    if len(shared) < 2:
        return math.nan, len(shared)
    a = np.array([before[f] for f in shared], dtype=np.float64)
    b = np.array([after[f] for f in shared], dtype=np.float64)
    return kendall(a, b), len(shared)


def top_k(order: Sequence[str], k: int) -> list[str]:
    return list(order[:k])


def per_sample_similarity(
    before: np.ndarray, after: np.ndarray, modality: str, lengths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Spearman of ``|attribution|`` per sample (rows of two ``(N, *shape)`` arrays of one
    shape), and SSIM of the max-normalized maps where the maps are 2-D (images), else None.

    ``lengths`` (text): only each sample's first ``lengths[i]`` units (its tokens, not the
    padding, whose attribution is 0 in both runs and would inflate the correlation) count.
    NaN where a map is constant (no ranks).
    """
    n = len(before)
    rho = np.full(n, math.nan)
    structural: np.ndarray | None = None
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        maps_a = [feature_map(before[i], modality) for i in range(start, stop)]
        maps_b = [feature_map(after[i], modality) for i in range(start, stop)]
        for i, (x, y) in enumerate(zip(maps_a, maps_b, strict=True)):
            if lengths is not None:
                x, y = x[: int(lengths[start + i])], y[: int(lengths[start + i])]
            rho[start + i] = spearman(x, y)
        if maps_a and maps_a[0].ndim == 2 and min(maps_a[0].shape) >= 2:
            if structural is None:
                structural = np.full(n, math.nan)
            a = np.stack([normalize_map(m) for m in maps_a])
            b = np.stack([normalize_map(m) for m in maps_b])
            structural[start:stop] = ssim_pairs(a, b)
    return rho, structural
