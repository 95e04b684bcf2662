"""The ``sklearn`` data source: bundled datasets, seeded stratified splits, scaling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from auditor.data.sklearn_source import SklearnDataSource, load_arrays
from auditor.registries import datasets


def load(**params: object):
    """The dataset the plugin builds from a spec's ``data:`` keys."""
    source = SklearnDataSource()
    return source.load(SklearnDataSource.Params.model_validate(params))


def test_registered_through_entry_point() -> None:
    assert datasets.get("sklearn") is SklearnDataSource


def test_digits_is_an_image_set_in_unit_range() -> None:
    ds = load(name="digits")
    x = ds.get(np.arange(len(ds)))
    assert ds.modality == "image"
    assert ds.input_shape == (1, 8, 8)
    assert x.dtype == torch.float32
    assert x.shape == (450, 1, 8, 8)
    assert ds.labels.dtype == np.int64
    assert ds.class_names == [str(d) for d in range(10)]
    assert ds.feature_names is None
    assert float(x.min()) == 0.0
    assert float(x.max()) == 1.0
    # Pixels are sixteenths: scaling by 1/16 keeps them exact.
    assert torch.equal(x * 16, (x * 16).round())
    assert ds.description == (
        "scikit-learn digits, test split: 450 of 1797 samples (stratified, test_size 0.25, "
        "split_seed 0)"
    )


def test_digits_ignore_standardize() -> None:
    x_on, _, _ = load_arrays("digits", "train", standardize=True)
    x_off, _, _ = load_arrays("digits", "train", standardize=False)
    np.testing.assert_array_equal(x_on, x_off)


def test_breast_cancer_is_tabular_with_sklearn_names() -> None:
    ds = load(name="breast_cancer")
    assert ds.modality == "tabular"
    assert ds.input_shape == (30,)
    assert len(ds) == 143
    assert ds.get(np.array([0, 5])).dtype == torch.float32
    assert ds.class_names == ["malignant", "benign"]
    assert ds.feature_names is not None
    assert len(ds.feature_names) == 30
    assert ds.feature_names[0] == "mean radius"
    assert ds.feature_names[-1] == "worst fractal dimension"


@pytest.mark.parametrize(
    ("name", "n_features", "class_names"),
    [
        ("wine", 13, ["class_0", "class_1", "class_2"]),
        ("iris", 4, ["setosa", "versicolor", "virginica"]),
    ],
)
def test_other_tabular_sets(name: str, n_features: int, class_names: list[str]) -> None:
    x, y, meta = load_arrays(name, "all")
    assert x.dtype == np.float32
    assert y.dtype == np.int64
    assert x.shape[1] == n_features
    assert meta.class_names == class_names
    assert meta.feature_names is not None and len(meta.feature_names) == n_features
    assert sorted(set(y.tolist())) == list(range(len(class_names)))


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "wine", "iris"])
def test_train_and_test_are_disjoint_and_cover_all(name: str) -> None:
    _, y_train, train = load_arrays(name, "train")
    _, y_test, test = load_arrays(name, "test")
    _, y_all, every = load_arrays(name, "all")
    assert not set(train.indices.tolist()) & set(test.indices.tolist())
    assert len(train.indices) + len(test.indices) == every.total == len(y_all)
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train.indices, test.indices])), np.arange(every.total)
    )
    # Labels follow their rows: the "all" split is the union in scikit-learn's order.
    np.testing.assert_array_equal(y_all[train.indices], y_train)
    np.testing.assert_array_equal(y_all[test.indices], y_test)


def test_digits_split_counts() -> None:
    _, y_train, _ = load_arrays("digits", "train")
    _, y_test, _ = load_arrays("digits", "test")
    assert (len(y_train), len(y_test)) == (1347, 450)
    assert len(y_train) + len(y_test) == 1797


def test_split_is_stratified() -> None:
    _, y_all, _ = load_arrays("breast_cancer", "all")
    _, y_test, _ = load_arrays("breast_cancer", "test", test_size=0.5)
    # Class shares in the test split match the whole set to within one sample.
    share_all = np.bincount(y_all) / len(y_all)
    share_test = np.bincount(y_test) / len(y_test)
    np.testing.assert_allclose(share_test, share_all, atol=1 / len(y_test))


def test_split_is_deterministic_and_depends_on_seed() -> None:
    x1, y1, m1 = load_arrays("wine", "test", split_seed=3)
    x2, y2, m2 = load_arrays("wine", "test", split_seed=3)
    _, _, other = load_arrays("wine", "test", split_seed=4)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(m1.indices, m2.indices)
    assert not np.array_equal(m1.indices, other.indices)


def test_test_size_sets_the_split_size() -> None:
    _, y, _ = load_arrays("iris", "test", test_size=0.2)
    assert len(y) == 30


def test_standardized_with_train_statistics() -> None:
    x_train, _, _ = load_arrays("breast_cancer", "train")
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=0), 1.0, atol=1e-4)
    # The test split uses the train split's statistics, so it is close but not exact.
    x_test, _, _ = load_arrays("breast_cancer", "test")
    assert np.abs(x_test.mean(axis=0)).max() > 1e-3
    assert np.abs(x_test.mean(axis=0)).max() < 0.5


def test_standardize_false_keeps_raw_values() -> None:
    from sklearn.datasets import load_breast_cancer

    x, _, meta = load_arrays("breast_cancer", "all", standardize=False)
    np.testing.assert_array_equal(x, load_breast_cancer().data.astype(np.float32))
    assert "standardized" not in meta.description


def test_params_defaults() -> None:
    params = SklearnDataSource.Params.model_validate({"name": "iris"})
    assert params.model_dump() == {
        "name": "iris",
        "split": "test",
        "test_size": 0.25,
        "split_seed": 0,
        "standardize": True,
    }


@pytest.mark.parametrize(
    ("data", "loc", "message"),
    [
        (
            {"name": "diabetes"},
            ("name",),
            "Input should be 'digits', 'breast_cancer', 'wine' or 'iris'",
        ),
        (
            {"name": "iris", "split": "val"},
            ("split",),
            "Input should be 'train', 'test' or 'all'",
        ),
        (
            {"name": "iris", "test_size": 0.99},
            ("test_size",),
            "Input should be less than or equal to 0.95",
        ),
        (
            {"name": "iris", "split_seed": -1},
            ("split_seed",),
            "Input should be greater than or equal to 0",
        ),
        ({"name": "iris", "path": "x.csv"}, ("path",), "Extra inputs are not permitted"),
        ({}, ("name",), "Field required"),
    ],
)
def test_params_errors(data: dict[str, object], loc: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        SklearnDataSource.Params.model_validate(data)
    errors = info.value.errors()
    assert [(e["loc"], e["msg"]) for e in errors] == [(loc, message)]


def test_load_arrays_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown scikit-learn dataset 'diabetes'"):
        load_arrays("diabetes")
