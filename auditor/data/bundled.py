"""scikit-learn's bundled data files and its stratified split, without importing scikit-learn.

Importing ``sklearn.datasets`` and ``sklearn.model_selection`` costs about a second of a
run's start-up (scipy, joblib, threadpoolctl...) to read a CSV file of a few hundred KB. The
files ship inside the installed scikit-learn package (``sklearn/datasets/data/``); this
module finds that folder without running the package, reads the files the way
``sklearn.datasets.load_*`` does, and splits them as ``train_test_split(..., stratify=y,
random_state=seed)`` does (``StratifiedShuffleSplit`` with ``_approximate_mode``: the same
calls on the same ``numpy.random.RandomState``, so the same rows; a test compares both on
every data set and several seeds and sizes).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
from dataclasses import dataclass
from functools import cache
from math import ceil
from pathlib import Path

import numpy as np

#: The file of each data set in ``sklearn/datasets/data/``.
FILES = {
    "digits": "digits.csv.gz",
    "breast_cancer": "breast_cancer.csv",
    "wine": "wine_data.csv",
    "iris": "iris.csv",
}


@dataclass(frozen=True)
class Bundled:
    """A data set as read from its file: ``data`` (N, F) float64, ``target`` (N,) int64 and,
    for the CSV files with a header, the target names it gives."""

    data: np.ndarray
    target: np.ndarray
    target_names: list[str]


@cache
def data_folder() -> Path:
    """``sklearn/datasets/data`` of the installed scikit-learn (the package is not run)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("scikit-learn is not installed: pip install scikit-learn")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    if not folder.is_dir():
        raise FileNotFoundError(f"scikit-learn's bundled data folder is missing: {folder}")
    return folder


def read(name: str) -> Bundled:
    """The data set ``name`` (a key of ``FILES``), as ``sklearn.datasets.load_<name>``."""
    path = data_folder() / FILES[name]
    if name == "digits":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            table = np.loadtxt(fh, delimiter=",")
        target = table[:, -1].astype(np.int64)
        return Bundled(table[:, :-1], target, [str(c) for c in range(int(target.max()) + 1)])
    with open(path, encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh)
        head = next(rows)
        n, features = int(head[0]), int(head[1])
        data = np.empty((n, features))
        target = np.empty(n, dtype=np.int64)
        for i, row in enumerate(rows):
            data[i] = np.asarray(row[:-1], dtype=np.float64)
            target[i] = int(row[-1])
    return Bundled(data, target, [str(t) for t in head[2:]])


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """Draws per class closest to ``counts``' proportions, ties broken at random
    (``sklearn.utils.extmath._approximate_mode``)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add = min(len(inds), need)
            floored[rng.choice(inds, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(int)


def stratified_split(
    labels: np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row numbers (unsorted, as scikit-learn returns them) of
    ``train_test_split(rows, test_size=test_size, random_state=seed, stratify=labels)``."""
    n = len(labels)
    n_test = ceil(test_size * n)
    n_train = n - n_test
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2 or n_train < len(counts) or n_test < len(counts):
        raise ValueError(
            f"a stratified split of {n} samples in {len(counts)} classes with test_size "
            f"{test_size} leaves a class out of a part"
        )
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    train_n = _approximate_mode(counts, n_train, rng)
    test_n = _approximate_mode(counts - train_n, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i, rows in enumerate(by_class):
        shuffled = rows.take(rng.permutation(counts[i]), mode="clip")
        train.extend(shuffled[: train_n[i]])
        test.extend(shuffled[train_n[i] : train_n[i] + test_n[i]])
    return rng.permutation(train), rng.permutation(test)
