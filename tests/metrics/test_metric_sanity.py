"""Randomization sanity (Adebayo et al. 2018) on the trained digits CNN, and its pieces.

The paper's qualitative finding must come out: gradient (saliency) and Integrated
Gradients maps change strongly under cascading randomization, Guided Backprop stays much
more similar while only the upper layers are random. The tie handling is checked: over
all pixels the zero-baseline IG keeps a high rank correlation, over the nonzero pixels it
does not.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from metric_setup import Audit, Linear, digits_cnn, measure

from auditor.metrics.randomization_sanity import cascade, randomize
from auditor.metrics.similarity import ssim

LAYERS = ["classifier.3", "classifier.1", "features.2", "features.0"]


@pytest.fixture(scope="module")
def sanity(digits: Audit) -> dict:
    return {
        name: measure("randomization_sanity", digits.ctx(digits.runs[name]), samples=16)
        for name in ("saliency", "integrated_gradients", "guided_backprop")
    }


def test_gradient_and_ig_maps_change_under_randomization(sanity: dict) -> None:
    for name in ("saliency", "integrated_gradients"):
        out = sanity[name]
        assert out.curves["layers"] == LAYERS
        assert out.values["spearman_final"] < 0.4, name
        assert max(out.curves["spearman"][-2:]) < 0.45, name  # by the last layers
        assert out.values["passed"] == 1.0
        assert out.per_sample.shape == (16,)
        assert np.isclose(np.nanmean(out.per_sample), out.values["spearman_final"])
    assert sanity["saliency"].values["spearman_final"] < 0.25
    assert sanity["saliency"].values["ssim_final"] < 0.25


def test_guided_backprop_stays_much_more_similar_than_the_gradient(sanity: dict) -> None:
    gbp = sanity["guided_backprop"].curves
    grad = sanity["saliency"].curves
    # While the classifier and the upper convolution are random, Guided Backprop still
    # draws nearly the same picture (it recovers the input's edges).
    for step in range(3):
        assert gbp["spearman"][step] > 0.55
        assert gbp["spearman"][step] > grad["spearman"][step] + 0.3
        assert gbp["ssim"][step] > grad["ssim"][step] + 0.3
    assert np.mean(gbp["spearman"]) > 2 * np.mean(grad["spearman"])


def test_shared_zeros_are_left_out_of_the_ranks(digits: Audit) -> None:
    ctx = digits.ctx(digits.runs["integrated_gradients"])
    every = measure("randomization_sanity", ctx, samples=16, region="all")
    baseline = measure("randomization_sanity", ctx, samples=16, region="baseline")
    nonzero = measure("randomization_sanity", ctx, samples=16)
    # IG is exactly 0 wherever a digit's pixel is 0, in every model: those ties alone
    # keep the rank correlation near 0.9 ...
    assert every.values["spearman_final"] > 0.85
    assert every.values["passed"] == 0.0
    assert "Spearman of |attribution| over every feature; failed" in every.note
    # ... and without them it is well below the threshold.
    assert nonzero.values["spearman_final"] < 0.45
    assert baseline.values["spearman_final"] == pytest.approx(
        nonzero.values["spearman_final"], abs=0.02
    )
    assert "the features where the input differs from the 'zeros' baseline (" in baseline.note
    assert "where the original or the fully randomized map is nonzero (" in nonzero.note
    assert every.values["ssim_final"] == nonzero.values["ssim_final"]  # SSIM: whole maps
    json.dumps({**nonzero.values, **nonzero.curves}, allow_nan=False)


def test_the_criterion_and_threshold_decide_the_verdict(digits: Audit) -> None:
    ctx = digits.ctx(digits.runs["guided_backprop"])
    strict = measure("randomization_sanity", ctx, samples=8, threshold=0.1, criterion="both")
    assert strict.values["passed"] == 0.0
    assert "failed: spearman and ssim at the fully randomized model not below 0.1" in strict.note


def test_the_cascade_runs_on_a_copy_and_is_seeded(digits: Audit) -> None:
    before = {k: v.clone() for k, v in digits.model.state_dict().items()}
    ctx = digits.ctx(digits.runs["saliency"])
    first = measure("randomization_sanity", ctx, samples=4)
    second = measure("randomization_sanity", ctx, samples=4)
    np.testing.assert_array_equal(first.per_sample, second.per_sample)
    for key, value in digits.model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_cascade_steps_go_top_down_and_group_layers() -> None:
    model = digits_cnn()
    assert cascade(model, 16) == [[name] for name in LAYERS]
    assert cascade(model, 2) == [LAYERS[:2], LAYERS[2:]]
    layer = torch.nn.Linear(4, 4)
    weight = layer.weight.detach().clone()
    randomize(layer, seed=3)
    changed = layer.weight.detach().clone()
    randomize(layer, seed=3)
    assert not torch.equal(changed, weight)
    assert torch.equal(layer.weight, changed)


def test_tabular_data_has_no_ssim(tmp_path: Path) -> None:
    torch.manual_seed(0)
    audit = Audit(Linear(6, 3).eval(), torch.randn(8, 6), np.zeros(8), tmp_path, modality="tabular")
    out = measure("randomization_sanity", audit.ctx(audit.explain("saliency")), samples=8)
    assert out.curves["layers"] == ["fc"]
    assert "ssim" not in out.curves and "ssim_final" not in out.values
    with pytest.raises(ValueError, match="criterion 'ssim' needs images; this data is tabular"):
        measure("randomization_sanity", audit.ctx(audit.runs["saliency"]), criterion="ssim")


def test_ssim_properties() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((8, 8))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, 1 - a) < 0  # inverted structure
    assert ssim(a, a * 0.5) < 1
    b = rng.random((8, 8))
    assert ssim(a, b) == pytest.approx(ssim(b, a))
    # Constant maps: only the luminance term is left, (2 m n + C1) / (m^2 + n^2 + C1).
    c1 = 0.01**2
    expected = (2 * 0.2 * 0.8 + c1) / (0.2**2 + 0.8**2 + c1)
    assert ssim(np.full((6, 6), 0.2), np.full((6, 6), 0.8)) == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"ssim needs two 2-D maps of one shape, got \(8, 8\)"):
        ssim(a, a[:4])


def test_ssim_of_a_stack_equals_ssim_pair_by_pair() -> None:
    """The sanity check computes SSIM for all samples in one batched pass; batching must not
    change a value (it was one call per sample, 80% of the metric's time)."""
    from auditor.metrics.similarity import ssim, ssim_pairs

    rng = np.random.default_rng(0)
    a, b = rng.random((37, 8, 8)), rng.random((37, 8, 8))
    b[3] = a[3]  # identical maps: SSIM 1
    batched = ssim_pairs(a, b, sigma=1.5)
    assert batched.shape == (37,)
    assert np.array_equal(batched, [ssim(x, y, sigma=1.5) for x, y in zip(a, b, strict=True)])
    assert batched[3] == pytest.approx(1.0)
    assert ssim_pairs(a[:0], b[:0]).shape == (0,)
