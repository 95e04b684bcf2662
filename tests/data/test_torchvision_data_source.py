"""The torchvision data source: FakeData (no files) and MNIST from idx files in tmp_path."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from auditor.data.torchvision_source import (
    TorchvisionDataParams,
    TorchvisionDataset,
    TorchvisionDataSource,
)
from auditor.errors import SpecError
from auditor.registries import datasets

MNIST_CLASSES = [
    "0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
    "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine",
]  # fmt: skip


def load(tmp_path: Path, **params: object) -> TorchvisionDataset:
    validated = TorchvisionDataParams.model_validate(params, context={"base_dir": tmp_path})
    return TorchvisionDataSource().load(validated)


def spec_error(tmp_path: Path, **params: object) -> tuple[tuple[str | int, ...], str]:
    """The one spec error of these params: from validating them (as ``validate`` does for
    a missing root or an unknown dataset) or else from loading."""
    try:
        validated = TorchvisionDataParams.model_validate(params, context={"base_dir": tmp_path})
    except ValidationError as exc:
        (error,) = exc.errors()
        return ("data", *error["loc"]), error["msg"].removeprefix("Value error, ")
    with pytest.raises(SpecError) as info:
        TorchvisionDataSource().load(validated)
    (issue,) = info.value.issues
    return issue.loc, issue.message


def write_idx(path: Path, array: np.ndarray) -> None:
    """The big-endian idx format of the MNIST files: magic (0, 0, type, rank), sizes, bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_mnist(root: Path, name: str = "MNIST") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All four raw files (torchvision checks that each exists), with tiny splits."""
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    splits = {}
    for prefix, count in (("train", 5), ("t10k", 3)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        splits[prefix] = (images, labels)
    return splits


def test_registered_under_torchvision() -> None:
    assert datasets.get("torchvision") is TorchvisionDataSource


def test_fake_data_needs_no_files(tmp_path: Path) -> None:
    data = load(
        tmp_path,
        dataset="FakeData",
        kwargs={"size": 6, "image_size": [3, 8, 8], "num_classes": 4},
    )
    assert data.modality == "image"
    assert data.input_shape == (3, 8, 8)
    assert data.class_names == ["0", "1", "2", "3"]
    assert len(data) == 6
    assert data.labels.dtype == np.int64
    expected = [data.dataset[i][1] for i in range(6)]
    assert data.labels.tolist() == expected
    got = data.get(np.array([5, 1]))
    assert got.dtype == torch.float32
    assert got.shape == (2, 3, 8, 8)
    assert float(got.min()) >= 0.0
    assert float(got.max()) <= 1.0
    pil = np.asarray(data.dataset[5][0]).transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(got[0].numpy(), pil, atol=1e-6)
    assert data.description == "torchvision FakeData: 6 images"


def test_mnist_from_idx_files(tmp_path: Path) -> None:
    splits = make_mnist(tmp_path / "mnist")
    data = load(tmp_path, dataset="MNIST", root="mnist")
    images, labels = splits["t10k"]
    assert data.class_names == MNIST_CLASSES
    assert data.input_shape == (1, 28, 28)
    assert data.labels.tolist() == labels.tolist()
    got = data.get(np.array([2, 0]))
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got[:, 0].numpy(), images[[2, 0]] / 255.0, atol=1e-6)
    assert data.description == f"torchvision MNIST (test) from {tmp_path / 'mnist'}: 3 images"

    train = load(tmp_path, dataset="MNIST", root="mnist", train=True)
    assert train.labels.tolist() == splits["train"][1].tolist()


def test_mnist_normalize_and_resize(tmp_path: Path) -> None:
    splits = make_mnist(tmp_path / "mnist")
    data = load(
        tmp_path,
        dataset="MNIST",
        root="mnist",
        center_crop=20,
        normalize={"mean": [0.1307], "std": [0.3081]},
    )
    assert data.input_shape == (1, 20, 20)
    got = data.get(np.array([1]))[0, 0].numpy()
    crop = splits["t10k"][0][1, 4:24, 4:24] / 255.0
    np.testing.assert_allclose(got, (crop - 0.1307) / 0.3081, atol=1e-5)
    assert spec_error(
        tmp_path, dataset="MNIST", root="mnist", normalize={"mean": [0, 0, 0], "std": [1, 1, 1]}
    ) == (
        ("data", "normalize"),
        "normalize has 3 values per statistic but the images have 1 channel; give 1 value",
    )


def test_fashion_mnist_layout(tmp_path: Path) -> None:
    make_mnist(tmp_path / "fm", name="FashionMNIST")
    data = load(tmp_path, dataset="FashionMNIST", root="fm")
    assert data.class_names[:2] == ["T-shirt/top", "Trouser"]
    assert len(data) == 3


def test_missing_root_names_path_and_layout(tmp_path: Path) -> None:
    assert spec_error(tmp_path, dataset="CIFAR10", root="cifar") == (
        ("data", "root"),
        f"folder {tmp_path / 'cifar'} does not exist; torchvision CIFAR10 expects "
        "<root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta "
        "(the unpacked cifar-10-python.tar.gz). Nothing is downloaded",
    )
    assert spec_error(tmp_path, dataset="MNIST") == (
        ("data", "root"),
        "torchvision MNIST needs root: a folder with <root>/MNIST/raw/train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (all four, "
        "unzipped)",
    )


def test_root_without_the_dataset(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert spec_error(tmp_path, dataset="MNIST", root="empty") == (
        ("data", "root"),
        f"torchvision MNIST found no usable data under {tmp_path / 'empty'} (Dataset not found."
        "); expected <root>/MNIST/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (all four, unzipped). Nothing is "
        "downloaded",
    )
    loc, message = spec_error(tmp_path, dataset="CIFAR100", root="empty")
    assert loc == ("data", "root")
    assert "expected <root>/cifar-100-python/train, test, meta" in message


def test_unknown_dataset_suggests(tmp_path: Path) -> None:
    loc, message = spec_error(tmp_path, dataset="FashionMnist")
    assert loc == ("data", "dataset")
    assert message.startswith(
        "unknown torchvision dataset 'FashionMnist'. Did you mean: FashionMNIST? Known: "
    )
    assert "CIFAR10, CIFAR100," in message


def test_download_is_refused(tmp_path: Path) -> None:
    assert spec_error(tmp_path, dataset="MNIST", root=".", kwargs={"download": True}) == (
        ("data", "kwargs", "download"),
        "download is not allowed: the auditor never downloads; put the dataset's files under "
        "root first",
    )


def test_bad_kwargs(tmp_path: Path) -> None:
    assert spec_error(tmp_path, dataset="FakeData", kwargs={"sise": 3}) == (
        ("data", "kwargs", "sise"),
        "torchvision.datasets.FakeData takes no argument 'sise'. Did you mean: size? It takes: "
        "image_size, num_classes, random_offset, size",
    )
    assert spec_error(tmp_path, dataset="FakeData", kwargs={"transform": None}) == (
        ("data", "kwargs", "transform"),
        "'transform' is set by the torchvision data source; remove it from kwargs",
    )


def test_train_for_a_dataset_with_splits(tmp_path: Path) -> None:
    (tmp_path / "svhn").mkdir()
    assert spec_error(tmp_path, dataset="SVHN", root="svhn", train=True) == (
        ("data", "train"),
        "torchvision.datasets.SVHN has no 'train' argument; choose its split in kwargs (it "
        "takes: split)",
    )


def test_params_are_checked() -> None:
    with pytest.raises(ValidationError):
        TorchvisionDataParams.model_validate({"dataset": "MNIST", "download": True})
