"""Deletion, insertion, infidelity and max-sensitivity: known orderings and exact values.

The issue's claim: on the trained digits CNN, Integrated Gradients and occlusion beat a
random order on deletion (lower AUC) and insertion (higher AUC). The curve machinery is
checked against hand-built inputs, and Yeh et al.'s metrics against a linear model, whose
gradient predicts every output change exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).parent))

from metric_setup import Audit, Linear, measure

from auditor.metrics.perturb import (
    area_under,
    attribution_ranks,
    feature_groups,
    group_scores,
    probability_curves,
    random_ranks,
)


@pytest.mark.parametrize("explainer", ["integrated_gradients", "occlusion"])
def test_deletion_and_insertion_beat_a_random_order(digits: Audit, explainer: str) -> None:
    ctx = digits.ctx(digits.runs[explainer])
    deletion = measure("deletion", ctx)
    insertion = measure("insertion", ctx)
    # Removing the top-attributed pixels kills the prediction much faster than chance ...
    assert deletion.values["auc"] < 0.5 * deletion.values["random_auc"]
    assert deletion.values["gain"] > 0.2
    # ... and revealing them on a blurred canvas restores it faster than chance.
    assert insertion.values["auc"] > insertion.values["random_auc"] + 0.1
    assert insertion.values["gain"] > 0.1
    assert deletion.per_sample.shape == (48,)
    assert np.isclose(deletion.per_sample.mean(), deletion.values["auc"])
    # Per sample too, most samples beat the random order.
    curves = deletion.curves
    assert len(curves["fraction"]) == len(curves["explainer"]) == 17  # 16 steps + start
    assert curves["fraction"][0] == 0.0 and curves["fraction"][-1] == 1.0
    json.dumps(curves, allow_nan=False)
    assert "48 samples; 64 patches of 1x1 pixels set to a 'zeros' baseline" in deletion.note


def test_the_random_order_is_shared_by_every_explainer(digits: Audit) -> None:
    ig = measure("deletion", digits.ctx(digits.runs["integrated_gradients"]))
    saliency = measure("deletion", digits.ctx(digits.runs["saliency"]))
    assert ig.values["random_auc"] == saliency.values["random_auc"]
    assert ig.curves["random"] == saliency.curves["random"]


def test_deletion_batches_and_patches_do_not_change_the_curve(digits: Audit) -> None:
    ctx = digits.ctx(digits.runs["integrated_gradients"])
    one = measure("deletion", ctx, samples=16, max_batch=1)
    many = measure("deletion", ctx, samples=16, max_batch=4096)
    np.testing.assert_allclose(one.per_sample, many.per_sample, rtol=1e-6)
    patches = measure("deletion", ctx, samples=16, patch=2, steps=100)
    assert len(patches.curves["fraction"]) == 17  # at most one step per group: 16 patches
    assert "16 patches of 2x2 pixels" in patches.note


def test_the_curve_moves_groups_from_start_to_end_in_rank_order() -> None:
    groups, n = feature_groups((1, 4, 4), "image", 2)
    assert n == 4
    assert groups[0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    attributions = torch.zeros(1, 1, 4, 4)
    attributions[0, 0, 2:, 2:] = 3.0  # group 3 first
    attributions[0, 0, :2, :2] = 2.0  # then group 0
    attributions[0, 0, 2:, :2] = -1.0  # group 2 last
    scores = group_scores(attributions, groups, n)
    assert scores.tolist() == [[2.0, 0.0, -1.0, 3.0]]
    ranks = attribution_ranks(scores)
    assert ranks.tolist() == [[1, 2, 3, 0]]

    class Share(torch.nn.Module):
        """Two classes; class 0's logit is log(number of pixels still at 1)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            kept = x.flatten(1).sum(1)
            return torch.stack([torch.log(kept + 1e-9), torch.zeros_like(kept)], dim=1)

    start, end = torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    curve = probability_curves(Share(), start, end, ranks, groups, torch.tensor([0]), 4, 3)
    kept = np.array([16, 12, 8, 4, 0])
    np.testing.assert_allclose(curve[0], kept / (kept + 1), atol=1e-6)
    np.testing.assert_allclose(area_under(curve), [np.trapezoid(curve[0], dx=0.25)])


def test_random_orders_depend_on_seed_and_position_only() -> None:
    a = random_ranks(np.array([3, 4]), 10, seed=0)
    b = random_ranks(np.array([4]), 10, seed=0)
    assert a[1].tolist() == b[0].tolist()
    assert sorted(a[0].tolist()) == list(range(10))
    assert random_ranks(np.array([4]), 10, seed=1).tolist() != b.tolist()


def test_tabular_deletion_on_a_linear_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    inputs = torch.randn(32, 6)
    model = Linear(6, 3).eval()
    audit = Audit(model, inputs, np.zeros(32), tmp_path, modality="tabular")
    run = audit.explain("integrated_gradients", {"n_steps": 16})
    out = measure("deletion", audit.ctx(run))
    assert out.values["gain"] > 0
    assert "6 features set to a 'mean' baseline in 6 steps" in out.note
    with pytest.raises(ValueError, match="baseline 'blur' applies to images"):
        measure("insertion", audit.ctx(run), baseline="blur")


def test_curve_params_are_bounded() -> None:
    from auditor.metrics.deletion import Deletion

    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Deletion.Params.model_validate({"steps": 0})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Deletion.Params.model_validate({"step": 4})


def test_infidelity_is_zero_for_the_gradient_of_a_linear_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    inputs = torch.rand(16, 6)
    audit = Audit(Linear(6, 3).eval(), inputs, np.zeros(16), tmp_path, modality="tabular")
    gradient = audit.explain("saliency", {"abs": False})
    ig = audit.explain("integrated_gradients", {"n_steps": 8})
    # f(x) - f(x - I) = W_t . I exactly, which the gradient W_t predicts.
    exact = measure("infidelity", audit.ctx(gradient), normalize=False)
    assert exact.per_sample.shape == (16,)
    assert exact.per_sample.max() < 1e-8
    assert measure("infidelity", audit.ctx(ig)).per_sample.mean() > 1e-3
    # The gradient of a linear model is constant: no perturbation moves it.
    assert measure("sensitivity_max", audit.ctx(gradient)).per_sample.max() < 1e-6
    moved = measure("sensitivity_max", audit.ctx(ig), radius=0.05).per_sample
    assert 0 < moved.mean() < 1


def test_infidelity_and_sensitivity_on_digits(digits: Audit) -> None:
    ctx = digits.ctx(digits.runs["integrated_gradients"])
    first = measure("infidelity", ctx, samples=8, n_perturb=8)
    again = measure("infidelity", ctx, samples=8, n_perturb=8)
    np.testing.assert_array_equal(first.per_sample, again.per_sample)  # seeded
    assert np.isfinite(first.per_sample).all() and (first.per_sample >= 0).all()
    sens = measure("sensitivity_max", ctx, samples=4, n_perturb=4)
    assert sens.per_sample.shape == (4,)
    assert (sens.per_sample > 0).all() and (sens.per_sample < 1).all()
