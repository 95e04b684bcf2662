"""Global explainers against analytic truth, the pooled image grid, and slice rankings."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))

from tiny import Linear, digits_batch, digits_cnn, make_explainer

from auditor.errors import RunError, SpecError
from auditor.explainers.base import Predictions
from auditor.explainers.grid import Grid, holdout_split, slice_features
from auditor.explainers.permutation_importance import assemble
from auditor.explainers.ranking import class_maps, ranking_names, slice_ranking


def predictions_of(model: torch.nn.Module, inputs: torch.Tensor, labels=None, targets=None):
    with torch.no_grad():
        logits = model(inputs).numpy().astype(np.float32)
    predicted = logits.argmax(axis=1)
    return Predictions(
        logits=logits,
        labels=predicted if labels is None else np.asarray(labels),
        targets=predicted if targets is None else np.asarray(targets),
    )


def tabular(n: int = 200, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))


def explain_tabular(name: str, model: torch.nn.Module, inputs, predictions, **params):
    explainer = make_explainer(name, model, params, modality="tabular", input_shape=(6,))
    return explainer.explain_global(inputs, predictions)


@cache
def digits_slice() -> tuple[torch.Tensor, Predictions]:
    inputs, labels = digits_batch(450)  # the whole held-out split
    return inputs, predictions_of(digits_cnn(), inputs, labels=labels.numpy())


# -- surrogate_linear ---------------------------------------------------------------------------
def test_surrogate_linear_recovers_the_weights_of_a_linear_model() -> None:
    model, x = Linear(), tabular()
    result = explain_tabular(
        "surrogate_linear", model, x, predictions_of(model, x, targets=np.full(200, 1))
    )
    w, b = model.fc.weight[1].detach().double().numpy(), float(model.fc.bias[1].detach())
    train, _ = holdout_split(200, 0.25, seed=0)
    assert result.fidelity["r2"] > 0.999
    assert result.fidelity["train_r2"] > 0.999
    np.testing.assert_allclose(result.extra["coefficients"], w, atol=1e-5)
    assert result.extra["intercept"] == pytest.approx(b, abs=1e-5)
    std = x[train].double().numpy().std(axis=0)
    np.testing.assert_allclose(result.importance, np.abs(w) * std, atol=1e-5)
    assert result.feature_names == [f"x{i}" for i in range(6)]
    assert result.extra["output"] == "logit of each sample's target class"
    assert (result.extra["n_train"], result.extra["n_test"]) == (150, 50)


def test_surrogate_linear_class_index_picks_the_regressed_logit() -> None:
    model, x = Linear(), tabular()
    result = explain_tabular("surrogate_linear", model, x, predictions_of(model, x), class_index=2)
    np.testing.assert_allclose(
        result.extra["coefficients"], model.fc.weight[2].detach().numpy(), atol=1e-5
    )
    assert result.extra["output"] == "logit of class 2"


def test_surrogate_linear_class_index_out_of_range_is_a_spec_error() -> None:
    model, x = Linear(), tabular(20)
    with pytest.raises(SpecError) as info:
        explain_tabular("surrogate_linear", model, x, predictions_of(model, x), class_index=3)
    assert str(info.value) == (
        "<spec> params.class_index: class_index 3 is out of range: the model has 3 outputs (0 to 2)"
    )


def test_surrogate_linear_ridge_shrinks_the_coefficients() -> None:
    model, x = Linear(), tabular()
    predictions = predictions_of(model, x, targets=np.full(200, 0))
    plain = explain_tabular("surrogate_linear", model, x, predictions)
    ridge = explain_tabular("surrogate_linear", model, x, predictions, alpha=1000.0)
    assert (
        np.abs(ridge.extra["coefficients"]).sum() < 0.5 * np.abs(plain.extra["coefficients"]).sum()
    )
    assert ridge.fidelity["r2"] < plain.fidelity["r2"]


# -- surrogate_tree -----------------------------------------------------------------------------
def walk(tree: dict, row: np.ndarray) -> int:
    """The class the stored tree gives a feature row (as a report drawing would read it)."""
    node = 0
    while tree["children_left"][node] != -1:
        go_left = row[tree["feature"][node]] <= tree["threshold"][node]
        node = tree["children_left"][node] if go_left else tree["children_right"][node]
    return tree["class"][node]


def test_surrogate_tree_mimics_the_digits_cnn_and_stores_a_drawable_tree() -> None:
    inputs, predictions = digits_slice()
    explainer = make_explainer("surrogate_tree", digits_cnn(), {})
    explainer.context.class_names = [f"digit {k}" for k in range(10)]
    result = explainer.explain_global(inputs, predictions)
    # Ten classes, 16 pooled cells, depth 6: far above chance (0.1); measured 0.69.
    assert result.fidelity["accuracy"] > 0.6
    tree = result.extra["tree"]
    table = slice_features(inputs, "image", None, (4, 4)).table
    _, test = holdout_split(len(inputs), 0.25, seed=0)
    walked = np.array([walk(tree, row) for row in table[test]])
    assert np.mean(walked == predictions.predicted[test]) == result.fidelity["accuracy"]
    leaves = [i for i, left in enumerate(tree["children_left"]) if left == -1]
    assert result.extra["leaves"] == len(leaves)
    assert result.extra["depth"] == 6
    assert all(tree["feature"][i] is None and tree["threshold"][i] is None for i in leaves)
    assert tree["n_samples"][0] == result.extra["n_train"] == 337
    assert tree["class_name"][0] == f"digit {tree['class'][0]}"
    np.testing.assert_allclose(np.sum(tree["value"], axis=1), 1.0)
    assert result.extra["text"].startswith("|--- r")
    assert "class: digit " in result.extra["text"]
    assert result.importance.sum() == pytest.approx(1.0)


# -- surrogate_forest ---------------------------------------------------------------------------
def test_surrogate_forest_keeps_both_importances() -> None:
    inputs, predictions = digits_slice()
    params = {"n_estimators": 20, "n_repeats": 2}
    permuted = make_explainer("surrogate_forest", digits_cnn(), params).explain_global(
        inputs, predictions
    )
    impurity = make_explainer(
        "surrogate_forest", digits_cnn(), {**params, "importance": "impurity"}
    ).explain_global(inputs, predictions)
    assert permuted.fidelity == impurity.fidelity
    assert permuted.fidelity["accuracy"] > 0.7
    np.testing.assert_array_equal(permuted.importance, permuted.extra["permutation_importance"])
    np.testing.assert_array_equal(impurity.importance, impurity.extra["impurity_importance"])
    np.testing.assert_array_equal(impurity.spread, impurity.extra["impurity_importance_std"])
    assert impurity.extra["impurity_importance"] == permuted.extra["impurity_importance"]
    assert impurity.importance.sum() == pytest.approx(1.0)


# -- permutation_importance ---------------------------------------------------------------------
def test_permutation_importance_of_an_unused_feature_is_exactly_zero() -> None:
    model, x = Linear(), tabular()
    with torch.no_grad():
        model.fc.weight[:, 2] = 0.0
    result = explain_tabular(
        "permutation_importance", model, x, predictions_of(model, x), scoring="agreement"
    )
    assert result.extra["baseline_score"] == 1.0
    assert result.importance[2] == 0.0 and result.spread[2] == 0.0
    assert (np.delete(result.importance, 2) > 0.0).all()
    assert np.array(result.extra["importances"]).shape == (6, 5)


def test_permutation_importance_accuracy_scores_against_the_labels() -> None:
    model, x = Linear(), tabular()
    predictions = predictions_of(model, x)
    labels = predictions.predicted.copy()
    labels[:50] = (labels[:50] + 1) % 3  # a quarter of the labels disagree with the model
    predictions = Predictions(predictions.logits, labels, predictions.targets)
    result = explain_tabular("permutation_importance", model, x, predictions)
    assert result.extra["baseline_score"] == 0.75


def test_cells_are_permuted_whole() -> None:
    inputs, _ = digits_batch(6)
    grid = Grid.for_shape((1, 8, 8), (4, 4))
    sources = np.zeros((2, 16), dtype=np.int64)
    sources[1, 6] = 5  # feature 6 is cell r1c2: rows 2-3, columns 4-5
    out = assemble(inputs, grid.element_features(), sources)
    assert torch.equal(out[0], inputs[0])
    expected = inputs[0].clone()
    expected[:, 2:4, 4:6] = inputs[5][:, 2:4, 4:6]
    assert torch.equal(out[1], expected)


def test_permutation_importance_on_images_ranks_cells() -> None:
    inputs, predictions = digits_slice()
    explainer = make_explainer("permutation_importance", digits_cnn(), {"n_repeats": 2})
    result = explainer.explain_global(inputs[:120], _head(predictions, 120))
    assert result.feature_names[:3] == ["r0c0", "r0c1", "r0c2"]
    centre = [result.feature_names.index(c) for c in ("r1c1", "r1c2", "r2c1", "r2c2")]
    # The digits are drawn in the middle: shuffling a central cell costs more than a corner.
    corners = [result.feature_names.index(c) for c in ("r0c0", "r0c3", "r3c0", "r3c3")]
    assert result.importance[centre].mean() > result.importance[corners].mean() + 0.05


def _head(p: Predictions, n: int) -> Predictions:
    return Predictions(p.logits[:n], p.labels[:n], p.targets[:n])


# -- the grid -----------------------------------------------------------------------------------
def test_grid_names_one_and_several_channels() -> None:
    assert Grid.for_shape((1, 8, 8), (2, 2)).feature_names() == ["r0c0", "r0c1", "r1c0", "r1c1"]
    names = Grid.for_shape((3, 4, 4), (1, 2)).feature_names()
    assert names == ["ch0_r0c0", "ch0_r0c1", "ch1_r0c0", "ch1_r0c1", "ch2_r0c0", "ch2_r0c1"]


def test_grid_pooling_is_the_mean_of_each_cell() -> None:
    x = torch.rand(3, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    pooled = Grid.for_shape((2, 8, 8), (4, 4)).pool(x)
    np.testing.assert_allclose(pooled, F.avg_pool2d(x.double(), 2).reshape(3, -1).numpy())


def test_grid_cells_partition_an_image_of_any_size() -> None:
    grid = Grid.for_shape((1, 7, 5), (3, 2))
    cells = grid.cell_map()
    assert grid.row_edges == [0, 2, 4, 7] and grid.col_edges == [0, 2, 5]
    assert np.bincount(cells.ravel()).tolist() == [4, 6, 4, 6, 6, 9]
    x = torch.rand(2, 1, 7, 5, generator=torch.Generator().manual_seed(0))
    means = [[float(x[n, 0][torch.as_tensor(cells == k)].mean()) for k in range(6)] for n in (0, 1)]
    np.testing.assert_allclose(grid.pool(x), means, rtol=1e-6)
    assert grid.to_pixels(np.arange(6.0))[0].tolist() == cells.astype(float).tolist()


def test_grid_larger_than_the_image_is_a_spec_error_at_construction() -> None:
    with pytest.raises(SpecError) as info:
        make_explainer("surrogate_tree", digits_cnn(), {"grid": [9, 4]})
    assert str(info.value) == (
        "<spec> params.grid: grid 9x4 does not fit images of 8x8 pixels: "
        "expected at most 8 rows and 8 columns"
    )


def test_holdout_split_is_seeded_and_disjoint() -> None:
    train, test = holdout_split(10, 0.25, seed=3)
    assert (len(train), len(test)) == (7, 3)
    assert sorted([*train, *test]) == list(range(10))
    again = holdout_split(10, 0.25, seed=3)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(test, holdout_split(10, 0.25, seed=4)[1])


def test_holdout_split_of_a_tiny_slice_is_a_run_error() -> None:
    with pytest.raises(RunError) as info:
        holdout_split(2, 0.25, seed=0)
    assert str(info.value) == (
        "a surrogate needs at least 2 training and 1 held-out sample; the slice has 2 "
        "samples and test_fraction=0.25 holds out 1"
    )


def test_tabular_features_use_the_dataset_names() -> None:
    features = slice_features(tabular(4), "tabular", list("abcdef"), (4, 4))
    assert features.names == list("abcdef") and features.grid is None
    assert features.table.dtype == np.float64 and features.table.shape == (4, 6)
    with pytest.raises(ValueError, match="2 feature names for 6 features: a, b"):
        slice_features(tabular(4), "tabular", ["a", "b"], (4, 4))


# -- slice rankings of local explainers ---------------------------------------------------------
def test_slice_ranking_of_tabular_attributions() -> None:
    a = np.array([[1.0, -2.0, 0.0], [-3.0, 2.0, 0.0]], dtype=np.float32)
    importance, std = slice_ranking(a, "tabular", ["a", "b", "c"])
    assert importance.tolist() == [2.0, 2.0, 0.0]
    assert std.tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="2 feature names for 3 features"):
        slice_ranking(a, "tabular", ["a", "b"])


def test_slice_ranking_of_images_averages_channels_per_pixel() -> None:
    a = np.zeros((2, 2, 2, 3), dtype=np.float32)
    a[0, 0, 1, 2], a[0, 1, 1, 2] = 4.0, -2.0  # |4| and |-2| average to 3 at pixel r1c2
    a[1, :, 0, 0] = 1.0
    importance, std = slice_ranking(a, "image", None)
    assert importance.shape == (6,)
    assert ranking_names("image", (2, 2, 3)) == ["r0c0", "r0c1", "r0c2", "r1c0", "r1c1", "r1c2"]
    assert importance.tolist() == [0.5, 0.0, 0.0, 0.0, 0.0, 1.5]
    assert std.tolist() == [0.5, 0.0, 0.0, 0.0, 0.0, 1.5]


def test_class_maps_average_each_class() -> None:
    a = np.zeros((3, 1, 2, 2))
    a[0, 0, 0, 0], a[1, 0, 0, 0], a[2, 0, 1, 1] = 2.0, -4.0, 5.0
    maps = class_maps(a, [7, 7, 1])
    assert sorted(maps) == [1, 7]
    assert maps[7].tolist() == [[3.0, 0.0], [0.0, 0.0]]
    assert maps[1].tolist() == [[0.0, 0.0], [0.0, 5.0]]
    tab = class_maps(np.array([[1.0, -1.0], [3.0, 0.0]]), [0, 0], modality="tabular")
    assert tab[0].tolist() == [2.0, 0.5]
    assert ranking_names("tabular", (2,)) == ["x0", "x1"]
