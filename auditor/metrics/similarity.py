"""Similarity and concentration of attribution maps, shared by the metrics.

Rank correlations (Spearman, Kendall), top-k overlap, cosine, SSIM of 2-D maps and the
Gini index. Every function takes numpy arrays and returns a Python float; a value that
is undefined (a constant map has no ranks) is NaN, which the runner's summaries drop.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from auditor.explainers.baselines import gaussian_blur


def feature_map(attributions: np.ndarray, modality: str) -> np.ndarray:
    """|attribution| per feature of one sample: pixels (channels averaged) or columns.

    ``(C, H, W) -> (H, W)`` for images, ``(F,) -> (F,)`` (flattened) for tabular rows.
    """
    from auditor.modalities import modality_of

    return modality_of(modality).sample_map(attributions)


def feature_maps(attributions: np.ndarray, modality: str) -> np.ndarray:
    """``feature_map`` of every sample of a batch, stacked: ``(N, *unit shape)`` float64.

    The image and the default (flattening) maps are computed for the whole batch at once,
    with the same arithmetic as one sample at a time; a modality with a map of its own is
    asked sample by sample.
    """
    from auditor.modalities.base import Modality, modality_of
    from auditor.modalities.image import ImageModality

    kind = modality_of(modality)
    method = type(kind).sample_map
    a = np.asarray(attributions)
    if method is ImageModality.sample_map and a.ndim == 4:
        return np.abs(a.astype(np.float64)).mean(axis=1)
    if method in (ImageModality.sample_map, Modality.sample_map) and a.ndim >= 1:
        return np.abs(a.astype(np.float64)).reshape(len(a), math.prod(a.shape[1:]))
    return np.stack([kind.sample_map(x) for x in a])


def _constant(a: np.ndarray) -> bool:
    return a.size < 2 or bool(np.all(a == a.flat[0]))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two flattened arrays (ties get average ranks)."""
    a, b = np.ravel(a), np.ravel(b)
    if _constant(a) or _constant(b):
        return math.nan
    from scipy import stats

    return float(stats.spearmanr(a, b).statistic)


def average_ranks(values: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Ranks 1..m along each row of ``values`` ``(N, F)`` among the row's ``keep`` entries.

    Ties get the average of the ranks they span (``scipy.stats.rankdata``'s ``average``
    method); entries outside ``keep`` are NaN and take no rank.
    """
    values = np.asarray(values, dtype=np.float64)
    keep = _keep(values, keep)
    ranks = _ranks(values, keep)
    ranks[~keep] = np.nan
    return ranks


def _keep(values: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    if values.ndim != 2:
        raise ValueError(f"ranks are taken along the rows of (N, F) arrays, got {values.shape}")
    if keep is None:
        return np.ones(values.shape, dtype=bool)
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != values.shape:
        raise ValueError(f"keep has shape {keep.shape}, the values {values.shape}")
    return keep


def _ranks(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``average_ranks`` with 0 (not NaN) outside ``keep``: all rows in one sort.

    Excluded entries become +inf and sort after the kept ones (one tie group, then zeroed).
    A row that keeps a +inf of its own sorts its excluded entries as NaN instead, which
    sorts after +inf and equals nothing (numpy sorts rows with NaN about 8x slower, so
    only those rows). Tie groups start where a sorted row's value differs from its left
    neighbour; each gets the mean of the positions it spans, so the order within a group
    does not matter.
    """
    n, m = values.shape
    if n * m == 0:
        return np.zeros((n, m))
    masked = np.where(keep, values, np.inf)
    order = np.argsort(masked, axis=1)
    infinite = (keep & np.isposinf(values)).any(axis=1)
    if infinite.any():
        rows = np.where(keep[infinite], values[infinite], np.nan)
        masked[infinite] = rows
        order[infinite] = np.argsort(rows, axis=1)
    ordered = np.take_along_axis(masked, order, axis=1)
    starts = np.ones((n, m), dtype=bool)
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts[:, 1:])
    first = np.flatnonzero(starts)
    sizes = np.diff(first, append=n * m)
    sorted_ranks = np.repeat(first % m + (sizes + 1) / 2.0, sizes).reshape(n, m)
    ranks = np.empty((n, m))
    np.put_along_axis(ranks, order, sorted_ranks, axis=1)
    ranks *= keep
    return ranks


def spearman_rows(a: np.ndarray, b: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """``spearman(a[i][keep[i]], b[i][keep[i]])`` for every row ``i`` of two ``(N, F)`` arrays.

    Pearson correlation of the rows' average ranks (whose mean over ``m`` kept entries is
    ``(m + 1) / 2``), computed for all rows at once; equal to ``scipy.stats.spearmanr``
    row by row within 1e-12. NaN for a row with fewer than two kept entries, a constant
    kept part on either side, or a NaN among its kept entries.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"spearman_rows needs two arrays of one shape, got {a.shape}, {b.shape}")
    keep = _keep(a, keep)
    mean = (keep.sum(axis=1, keepdims=True) + 1) / 2.0
    ca = (_ranks(a, keep) - mean) * keep
    cb = (_ranks(b, keep) - mean) * keep
    den = np.sqrt(np.einsum("ij,ij->i", ca, ca) * np.einsum("ij,ij->i", cb, cb))
    undefined = (den == 0) | np.isnan(np.where(keep, a + b, 0.0)).any(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.clip(np.einsum("ij,ij->i", ca, cb) / den, -1.0, 1.0)
    rho[undefined] = np.nan
    return rho


def kendall(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b of two flattened arrays (scipy.stats.kendalltau)."""
    a, b = np.ravel(a), np.ravel(b)
    if _constant(a) or _constant(b):
        return math.nan
    from scipy import stats

    return float(stats.kendalltau(a, b).statistic)


def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of the ``k`` largest entries of ``a`` that are among the ``k`` largest of ``b``.

    Ties are broken by position (stable sort), the same way for both arrays.
    """
    a, b = np.ravel(a), np.ravel(b)
    k = max(1, min(k, a.size))
    top_a = np.argsort(-a, kind="stable")[:k]
    top_b = np.argsort(-b, kind="stable")[:k]
    return len(np.intersect1d(top_a, top_b)) / k


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two flattened arrays (NaN when either is all zero)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else math.nan


def normalize_map(a: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by its maximum (an all-zero map stays zero)."""
    a = np.asarray(a, dtype=np.float64)
    top = float(a.max()) if a.size else 0.0
    return a / top if top > 0 else np.zeros_like(a)


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """``normalize_map`` of each map of a stack ``(N, ...)``, all at once."""
    a = np.asarray(maps, dtype=np.float64)
    if a.size == 0:
        return a.copy()
    top = a.reshape(len(a), -1).max(axis=1).reshape(-1, *([1] * (a.ndim - 1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(top > 0, a / np.where(top > 0, top, 1.0), 0.0)


def ssim(a: np.ndarray, b: np.ndarray, *, sigma: float = 1.5, data_range: float = 1.0) -> float:
    """Structural similarity of two 2-D maps with a Gaussian window.

    Wang, Bovik, Sheikh, Simoncelli 2004, "Image Quality Assessment: From Error
    Visibility to Structural Similarity", https://doi.org/10.1109/TIP.2003.819861.
    Local means, variances and covariance come from a Gaussian filter (``sigma`` pixels,
    reflect padding, cut to the map's size); the SSIM map is averaged over every pixel,
    with the usual constants ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2``.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"ssim needs two 2-D maps of one shape, got {a.shape} and {b.shape}")
    return float(ssim_pairs(a[None], b[None], sigma=sigma, data_range=data_range)[0])


#: Maps with both sides up to this many pixels are blurred by two matrix products.
MATRIX_BLUR_SIDE = 64


def ssim_pairs(
    a: np.ndarray, b: np.ndarray, *, sigma: float = 1.5, data_range: float = 1.0
) -> np.ndarray:
    """``ssim`` of each pair ``(a[i], b[i])`` of two ``(N, H, W)`` stacks, in one batched
    filter pass over the means, squares and products of every pair (one call per pair
    cost the randomization sanity check 80% of its time: per-call overhead on 8x8 maps)."""
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"ssim needs two stacks of 2-D maps, got {a.shape} and {b.shape}")
    if min(a.shape[-2:]) < 2:
        raise ValueError(f"ssim needs maps of at least 2x2 pixels, got {a.shape[1:]}")
    n = len(a)
    if n == 0:
        return np.zeros(0)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    blurred = blur_stack(np.concatenate([a, b, a * a, b * b, a * b]), sigma)
    mu_a, mu_b, sq_a, sq_b, ab = (blurred[k * n : (k + 1) * n] for k in range(5))
    var_a, var_b, cross = sq_a - mu_a * mu_a, sq_b - mu_b * mu_b, ab - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    num = (2 * mu_a * mu_b + c1) * (2 * cross + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).mean(axis=(1, 2))


def blur_stack(maps: np.ndarray, sigma: float) -> np.ndarray:
    """``gaussian_blur`` (separable, reflect padding) of each map of an ``(M, H, W)`` stack.

    Small maps (both sides up to ``MATRIX_BLUR_SIDE``) go through two matrix products with
    the blur's ``(H, H)`` and ``(W, W)`` matrices, built by blurring unit vectors with
    ``gaussian_blur`` itself: on 8x8 maps 20x faster than its float64 convolutions, equal
    to them up to rounding (about 1e-16). Larger maps use the convolutions.
    """
    m, h, w = maps.shape
    if max(h, w) > MATRIX_BLUR_SIDE:
        x = torch.as_tensor(maps, dtype=torch.float64).unsqueeze(1)
        return gaussian_blur(x, sigma).squeeze(1).numpy()
    rows, cols = blur_matrix(h, sigma), blur_matrix(w, sigma)
    out = (maps.reshape(m * h, w) @ cols.T).reshape(m, h, w)  # along each row
    return np.swapaxes((np.swapaxes(out, 1, 2).reshape(m * w, h) @ rows.T).reshape(m, w, h), 1, 2)


def blur_matrix(size: int, sigma: float) -> np.ndarray:
    """The ``(size, size)`` matrix of ``gaussian_blur`` along one axis of that length."""
    unit = torch.eye(size, dtype=torch.float64).reshape(size, 1, size, 1)  # one unit per image
    return gaussian_blur(unit, sigma).reshape(size, size).numpy().T.copy()


def gini(values: np.ndarray) -> float:
    """Gini index of |values| (Hurley and Rickard 2009): 0 for uniform, (n-1)/n for one-hot.

    ``1 - 2 * sum_k (c_k / |c|_1) * (n - k + 1/2) / n`` over the magnitudes sorted
    ascending (k = 1..n). NaN for an all-zero vector, whose concentration is undefined.
    """
    c = np.sort(np.abs(np.ravel(values)).astype(np.float64))
    total = float(c.sum())
    n = c.size
    if n == 0 or total == 0:
        return math.nan
    k = np.arange(1, n + 1)
    return float(1.0 - 2.0 * np.sum((c / total) * (n - k + 0.5) / n))


def nanmean(values: list[float] | np.ndarray) -> float:
    """Mean of the finite values, NaN when there are none (without numpy's warning)."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    return float(finite.mean()) if finite.size else math.nan
