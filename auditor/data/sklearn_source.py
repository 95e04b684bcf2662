"""The classification datasets bundled inside scikit-learn: digits, breast_cancer, wine, iris.

Nothing is downloaded: only the ``load_*`` loaders whose files ship with scikit-learn are
used, never ``fetch_*``. The train/test split is stratified and seeded, so a model trained on
``split="train"`` (see ``examples/train.py``) is audited on exactly the held-out samples.

Shapes: digits is an image set, ``(N, 1, 8, 8)`` in ``[0, 1]``; the others are tabular,
``(N, F)`` float32, z-scored with the mean and standard deviation of the train split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from auditor.data import bundled
from auditor.data.base import AuditDataset, DataSource, Modality, StaticInfo, TensorDataset
from auditor.plugin import Params as PluginParams

DatasetName = Literal["digits", "breast_cancer", "wine", "iris"]
Split = Literal["train", "test", "all"]

#: The bundled data sets (``sklearn.datasets.load_<name>``), read from scikit-learn's data
#: files without importing scikit-learn (``auditor.data.bundled``).
_LOADERS = tuple(bundled.FILES)
_IMAGE_SETS = frozenset({"digits"})
# Pixel values of load_digits are counts of set pixels in 4x4 blocks: 0..16.
_DIGITS_MAX = 16.0


_BREAST_CANCER_STATS = (
    "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
    "concave points", "symmetry", "fractal dimension",
)  # fmt: skip
_WINE_FEATURES = (
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
    "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
    "od280/od315_of_diluted_wines", "proline",
)  # fmt: skip
#: What each bundled data set is, as scikit-learn's loaders describe it; written out so that
#: ``auditor validate`` knows shapes and names without importing scikit-learn (a test
#: compares this table with the loaders).
STATIC_INFO = {
    "digits": StaticInfo("image", (1, 8, 8), None, [str(i) for i in range(10)]),
    "breast_cancer": StaticInfo(
        "tabular",
        (30,),
        [
            f"{kind}{stat}{suffix}"
            for kind, suffix in (("mean ", ""), ("", " error"), ("worst ", ""))
            for stat in _BREAST_CANCER_STATS
        ],
        ["malignant", "benign"],
    ),
    "wine": StaticInfo(
        "tabular",
        (13,),
        list(_WINE_FEATURES),
        ["class_0", "class_1", "class_2"],
    ),
    "iris": StaticInfo(
        "tabular",
        (4,),
        ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
        ["setosa", "versicolor", "virginica"],
    ),
}


@dataclass(frozen=True)
class ArraysMeta:
    """What ``load_arrays`` knows about the arrays it returns besides their values."""

    modality: Modality
    class_names: list[str]
    feature_names: list[str] | None
    #: Row numbers in scikit-learn's original order, one per returned sample (ascending).
    indices: np.ndarray
    #: Number of samples in the whole dataset, before splitting.
    total: int
    description: str


def split_indices(
    labels: np.ndarray, test_size: float, split_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded train/test row numbers, each sorted ascending: the rows of
    ``sklearn.model_selection.train_test_split(..., stratify=labels)`` (``bundled``)."""
    train, test = bundled.stratified_split(labels, test_size, split_seed)
    # Sorted so that a slice like {start: 0, stop: 64} keeps scikit-learn's order.
    return np.sort(train), np.sort(test)


def load_arrays(
    name: str,
    split: str = "test",
    test_size: float = 0.25,
    split_seed: int = 0,
    standardize: bool = True,
) -> tuple[np.ndarray, np.ndarray, ArraysMeta]:
    """One split of a bundled dataset as ``(X float32, y int64, meta)``.

    The training script and the ``sklearn`` data source both call this, so a model sees the
    same preprocessing when it is trained and when it is audited. ``X`` is
    ``(N, 1, 8, 8)`` in ``[0, 1]`` for digits and ``(N, F)`` for the tabular sets; with
    ``standardize`` the tabular features are z-scored with the train split's statistics
    (whatever ``split`` is asked for). Images are never standardized.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown scikit-learn dataset {name!r}; expected one of {list(_LOADERS)}")
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    table = bundled.read(name)  # the file scikit-learn's loader reads, without scikit-learn
    y_all = table.target
    train_idx, test_idx = split_indices(y_all, test_size, split_seed)
    chosen = {"train": train_idx, "test": test_idx, "all": np.arange(len(y_all))}[split]

    if name in _IMAGE_SETS:
        images = table.data.reshape(-1, 8, 8) / _DIGITS_MAX
        x_all = images[:, None, :, :]
        modality: Modality = "image"
        class_names = [str(c) for c in range(int(y_all.max()) + 1)]
        feature_names = None
    else:
        x_all = table.data
        if standardize:
            x_all = _standardize(x_all, x_all[train_idx])
        modality = "tabular"
        class_names = list(table.target_names)
        feature_names = list(STATIC_INFO[name].feature_names or [])

    x = np.ascontiguousarray(x_all[chosen], dtype=np.float32)
    y = y_all[chosen].copy()
    scaled = ", standardized" if standardize and name not in _IMAGE_SETS else ""
    description = (
        f"scikit-learn {name}, {split} split: {len(y)} of {len(y_all)} samples "
        f"(stratified, test_size {test_size}, split_seed {split_seed}{scaled})"
    )
    meta = ArraysMeta(modality, class_names, feature_names, chosen.copy(), len(y_all), description)
    return x, y, meta


def _standardize(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` with the statistics of ``reference``; constant columns stay put."""
    mean = reference.mean(axis=0)
    std = reference.std(axis=0)
    # A column that is constant on the train split carries no information; dividing by 1
    # instead of 0 keeps it finite.
    std = np.where(std > 0, std, 1.0)
    return (x - mean) / std


class SklearnDataSource(DataSource):
    """Classification datasets bundled with scikit-learn (digits, breast_cancer, wine, iris).

    Splits are stratified and seeded (``sklearn.model_selection.train_test_split``); tabular
    features are z-scored with the train split's mean and standard deviation.
    """

    name: ClassVar[str] = "sklearn"

    class Params(PluginParams):
        name: DatasetName = Field(
            description="Which bundled dataset: digits (8x8 images), breast_cancer, wine, iris."
        )
        split: Split = Field(
            default="test",
            description="Which part: the held-out test split, the train split, or all samples.",
        )
        test_size: float = Field(
            default=0.25,
            ge=0.05,
            le=0.95,
            description="Fraction of samples held out as the test split.",
        )
        split_seed: int = Field(
            default=0,
            ge=0,
            le=2**32 - 1,
            description="Seed of the stratified train/test split.",
        )
        standardize: bool = Field(
            default=True,
            description="Z-score tabular features with the train split's mean and std "
            "(ignored for digits, whose pixels are scaled to [0, 1]).",
        )

    @classmethod
    def static_info(cls, params: BaseModel) -> StaticInfo | None:
        """The bundled data set's modality, shape and names, from a table (nothing loaded)."""
        return STATIC_INFO.get(str(getattr(params, "name", "")))

    def load(self, params: BaseModel) -> AuditDataset:
        """The requested split as an in-memory dataset."""
        p = self.Params.model_validate(params)
        x, y, meta = load_arrays(p.name, p.split, p.test_size, p.split_seed, p.standardize)
        return TensorDataset(
            torch.from_numpy(x),
            y,
            modality=meta.modality,
            class_names=meta.class_names,
            feature_names=meta.feature_names,
            description=meta.description,
        )
