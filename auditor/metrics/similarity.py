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


def _constant(a: np.ndarray) -> bool:
    return a.size < 2 or bool(np.all(a == a.flat[0]))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two flattened arrays (ties get average ranks)."""
    a, b = np.ravel(a), np.ravel(b)
    if _constant(a) or _constant(b):
        return math.nan
    from scipy import stats

    return float(stats.spearmanr(a, b).statistic)


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


def ssim_pairs(
    a: np.ndarray, b: np.ndarray, *, sigma: float = 1.5, data_range: float = 1.0
) -> np.ndarray:
    """``ssim`` of each pair ``(a[i], b[i])`` of two ``(N, H, W)`` stacks, in three batched
    filter passes: one call per pair cost the randomization sanity check 80% of its time
    (torch's per-call overhead on 8x8 maps, paid 3 times per sample and cascade step)."""
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"ssim needs two stacks of 2-D maps, got {a.shape} and {b.shape}")
    if min(a.shape[-2:]) < 2:
        raise ValueError(f"ssim needs maps of at least 2x2 pixels, got {a.shape[1:]}")
    n = len(a)
    if n == 0:
        return np.zeros(0)
    x = torch.as_tensor(np.concatenate([a, b]), dtype=torch.float64).unsqueeze(1)  # (2N,1,H,W)
    mu = gaussian_blur(x, sigma)
    sq = gaussian_blur(x * x, sigma) - mu * mu
    cross = gaussian_blur(x[:n] * x[n:], sigma) - mu[:n] * mu[n:]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b, var_a, var_b = mu[:n], mu[n:], sq[:n], sq[n:]
    num = (2 * mu_a * mu_b + c1) * (2 * cross + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).mean(dim=(1, 2, 3)).numpy()


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
