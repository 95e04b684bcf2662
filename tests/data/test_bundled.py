"""scikit-learn's bundled data read and split without scikit-learn (``auditor.data.bundled``)
equal scikit-learn's own loaders and ``train_test_split``, and loading them does not import
scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn import datasets
from sklearn.model_selection import train_test_split

from auditor.data import bundled
from auditor.data.sklearn_source import STATIC_INFO, load_arrays


@pytest.mark.parametrize("name", list(bundled.FILES))
def test_read_equals_sklearns_loader(name: str) -> None:
    bunch = getattr(datasets, f"load_{name}")()
    table = bundled.read(name)
    np.testing.assert_array_equal(table.data, bunch.data)
    np.testing.assert_array_equal(table.target, bunch.target)
    if name != "digits":
        assert table.target_names == [str(t) for t in bunch.target_names]
        assert STATIC_INFO[name].feature_names == [str(f) for f in bunch.feature_names]


@pytest.mark.parametrize("name", list(bundled.FILES))
@pytest.mark.parametrize(("test_size", "seed"), [(0.25, 0), (0.25, 7), (0.1, 3), (0.5, 123)])
def test_split_equals_train_test_split(name: str, test_size: float, seed: int) -> None:
    labels = bundled.read(name).target
    train, test = bundled.stratified_split(labels, test_size, seed)
    want_train, want_test = train_test_split(
        np.arange(len(labels)), test_size=test_size, random_state=seed, stratify=labels
    )
    np.testing.assert_array_equal(train, want_train)
    np.testing.assert_array_equal(test, want_test)


def test_a_split_that_leaves_a_class_out_is_refused() -> None:
    with pytest.raises(ValueError, match="leaves a class out"):
        bundled.stratified_split(np.array([0, 0, 1, 1, 2, 2]), 0.2, 0)


def test_loading_digits_does_not_import_sklearn() -> None:
    code = (
        "import sys; from auditor.data.sklearn_source import load_arrays; "
        "x, y, m = load_arrays('digits', 'test'); "
        "print(x.shape, 'sklearn' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["(450,", "1,", "8,", "8)", "False"]
    assert load_arrays("digits", "test")[0].shape == (450, 1, 8, 8)
