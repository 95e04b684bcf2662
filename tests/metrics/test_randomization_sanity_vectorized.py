"""The randomization sanity check computed for all samples at once equals the plain way.

Each vectorized piece (ranks, Spearman per row, the stacked feature maps, the scaling and
the blur of SSIM) against scipy or the per-sample code, and the whole metric on the trained
digits CNN against a reference written here the straightforward way: a deep copy, each
layer's ``reset_parameters`` under the step's seed, the explainer again, and
``scipy.stats.spearmanr`` sample by sample.
"""

from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))

from metric_setup import Audit, measure

from auditor.explainers.baselines import gaussian_blur
from auditor.metrics.similarity import (
    average_ranks,
    blur_stack,
    feature_map,
    feature_maps,
    normalize_map,
    normalize_maps,
    spearman_rows,
    ssim_pairs,
)


def scipy_rows(a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """scipy's Spearman row by row over the kept entries (NaN where undefined)."""
    out = np.full(len(a), np.nan)
    for i, (x, y, k) in enumerate(zip(a, b, keep, strict=True)):
        x, y = x[k], y[k]
        if x.size >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0:
            out[i] = stats.spearmanr(x, y).statistic
    return out


@pytest.mark.parametrize("tied", [False, True])
def test_spearman_rows_equals_scipy(tied: bool) -> None:
    rng = np.random.default_rng(1)
    shape = (120, 64)
    if tied:  # few distinct values, many exact zeros: ties everywhere
        a = rng.integers(0, 4, shape).astype(np.float64)
        b = np.where(rng.random(shape) < 0.4, 0.0, rng.integers(0, 3, shape))
    else:
        a, b = rng.normal(size=shape), rng.normal(size=shape)
    keep = rng.random(shape) < 0.75
    keep[0] = True  # every feature
    keep[1] = False  # none: undefined
    keep[2] = False
    keep[2, 7] = True  # one: undefined
    keep[3] = False
    keep[3, [4, 9]] = True  # two: +-1 or undefined when tied
    a[4] = 2.5  # constant: undefined
    a[5, 3], keep[5, 3] = np.inf, True
    a[6, :2], keep[6, :2] = np.inf, True  # two kept infinities tie
    b[7, 11], keep[7, 11] = np.nan, True  # a NaN kept: undefined (scipy propagates it)
    b[8, 12], keep[8, 12] = np.nan, False  # a NaN left out: no effect
    got = spearman_rows(a, b, keep)
    want = scipy_rows(a, b, keep)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[[1, 2, 4, 7]]).all()
    assert np.isfinite(got[[0, 5, 6, 8]]).all()
    assert np.nanmax(np.abs(got - want)) < 1e-9
    every = spearman_rows(a[:, :10], b[:, :10])  # no mask: every entry
    want_every = scipy_rows(a[:, :10], b[:, :10], np.ones((120, 10), dtype=bool))
    assert np.array_equal(np.isnan(every), np.isnan(want_every))
    assert np.nanmax(np.abs(every - want_every)) < 1e-9


def test_average_ranks_equal_scipy_rankdata() -> None:
    rng = np.random.default_rng(2)
    values = rng.integers(0, 5, (50, 20)).astype(np.float64)
    keep = rng.random((50, 20)) < 0.6
    ranks = average_ranks(values, keep)
    assert np.isnan(ranks[~keep]).all()
    for row, k, r in zip(values, keep, ranks, strict=True):
        assert np.array_equal(r[k], stats.rankdata(row[k]))
    assert np.array_equal(average_ranks(values), stats.rankdata(values, axis=1))


def test_feature_maps_equal_the_per_sample_maps() -> None:
    rng = np.random.default_rng(3)
    colour = rng.normal(size=(5, 3, 6, 7)).astype(np.float32)
    rows = rng.normal(size=(5, 9)).astype(np.float32)
    for batch, modality in ((colour, "image"), (colour[:, 0], "image"), (rows, "tabular")):
        want = np.stack([feature_map(x, modality) for x in batch])
        assert np.array_equal(feature_maps(batch, modality), want)
    maps = np.abs(rng.normal(size=(4, 5, 5)))
    maps[1] = 0.0
    maps[2, 0, 0] = np.nan
    want = np.stack([normalize_map(m) for m in maps])
    assert np.array_equal(normalize_maps(maps), want)


@pytest.mark.parametrize("shape", [(8, 8), (5, 11), (2, 2), (70, 66)])
def test_the_matrix_blur_equals_the_convolution(shape: tuple[int, int]) -> None:
    maps = np.random.default_rng(4).random((6, *shape))
    for sigma in (0.5, 1.5, 3.0):
        want = gaussian_blur(torch.as_tensor(maps).unsqueeze(1), sigma).squeeze(1).numpy()
        assert np.abs(blur_stack(maps, sigma) - want).max() < 1e-12


def reference_ssim(a: np.ndarray, b: np.ndarray, sigma: float) -> float:
    """SSIM of one pair of maps, straight from Wang et al. 2004 with the same blur."""
    x, y = (torch.as_tensor(m, dtype=torch.float64)[None, None] for m in (a, b))
    mu_x, mu_y = gaussian_blur(x, sigma), gaussian_blur(y, sigma)
    var_x = gaussian_blur(x * x, sigma) - mu_x**2
    var_y = gaussian_blur(y * y, sigma) - mu_y**2
    cov = gaussian_blur(x * y, sigma) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    return float((num / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))).mean())


def test_ssim_pairs_equal_one_pair_at_a_time() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.random((10, 8, 8)), rng.random((10, 8, 8))
    want = [reference_ssim(x, y, 1.5) for x, y in zip(a, b, strict=True)]
    assert np.abs(ssim_pairs(a, b) - want).max() < 1e-12


def scaled(m: np.ndarray) -> np.ndarray:
    return m / m.max() if m.max() > 0 else np.zeros_like(m)


def reference_cascade(audit: Audit, name: str, samples: int, region: str) -> dict:
    """The check done the plain way: per step, per sample, scipy (images, region nonzero/all)."""
    run = audit.runs[name]
    inputs = audit.inputs[:samples]
    targets = torch.as_tensor(audit.predictions.targets[:samples])
    before = np.abs(np.asarray(run.attributions[:samples], dtype=np.float64)).mean(axis=1)
    model = copy.deepcopy(audit.model).eval()
    layers = [m for m in model.modules() if list(m.parameters(recurse=False))][::-1]
    spearman, ssims, rho = [], [], np.zeros(0)
    for step, layer in enumerate(layers):
        with torch.random.fork_rng():
            torch.manual_seed(audit.context.seed + step)
            layer.reset_parameters()
        explainer = run.cls(model, run.params, audit.context)
        maps = [
            explainer.explain(inputs[i : i + 16], targets[i : i + 16])
            for i in range(0, samples, 16)
        ]
        after = np.abs(torch.cat(maps).numpy().astype(np.float64)).mean(axis=1)
        rho = np.full(samples, np.nan)
        for i in range(samples):
            a, b = before[i].ravel(), after[i].ravel()
            keep = (a != 0) | (b != 0) if region == "nonzero" else np.ones(a.size, bool)
            if np.ptp(a[keep]) > 0 and np.ptp(b[keep]) > 0:
                rho[i] = stats.spearmanr(a[keep], b[keep]).statistic
        spearman.append(float(np.nanmean(rho)))
        pairs = zip(before, after, strict=True)
        ssims.append(float(np.mean([reference_ssim(scaled(x), scaled(y), 1.5) for x, y in pairs])))
    return {"spearman": spearman, "ssim": ssims, "rho": rho}


@pytest.mark.parametrize(
    ("name", "region"),
    [("saliency", "nonzero"), ("integrated_gradients", "nonzero"), ("saliency", "all")],
)
def test_the_metric_equals_a_plain_reference(digits: Audit, name: str, region: str) -> None:
    """The reference explains in the slice's batches of 16, as the metric does."""
    samples = 20
    out = measure(
        "randomization_sanity", digits.ctx(digits.runs[name]), samples=samples, region=region
    )
    want = reference_cascade(digits, name, samples, region)
    assert len(out.curves["spearman"]) == 4
    assert np.allclose(out.curves["spearman"], want["spearman"], rtol=0, atol=5e-7)  # 6 decimals
    assert np.allclose(out.curves["ssim"], want["ssim"], rtol=0, atol=5e-7)
    assert np.array_equal(np.isnan(out.per_sample), np.isnan(want["rho"]))
    assert np.nanmax(np.abs(out.per_sample - want["rho"])) < 1e-9
    assert math.isclose(out.values["spearman_final"], want["spearman"][-1], abs_tol=1e-9)
    assert math.isclose(out.values["ssim_final"], want["ssim"][-1], abs_tol=1e-9)
