"""A ``torchvision.datasets`` class over files already on disk (nothing is downloaded).

Samples (PIL images, arrays or tensors) become float32 ``(C, H, W)`` in ``[0, 1]``, then
are normalized if asked. Labels come from the dataset's ``targets``/``labels`` when it
keeps them, else from reading every sample once.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torchvision.datasets
from pydantic import Field, ValidationInfo, field_validator

from auditor.data.base import AuditDataset, DataSource, StaticInfo, default_class_names
from auditor.data.transforms import Normalize, SizeParam, output_size, prepare
from auditor.errors import RunError, SpecError
from auditor.paths import SpecPath
from auditor.plugin import Params
from auditor.suggest import did_you_mean

_MNIST_FILES = (
    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
    "t10k-labels-idx1-ubyte (all four, unzipped)"
)
#: What each common dataset needs under ``root``; shown when it is not there.
EXPECTED_LAYOUT = {
    "CIFAR10": "<root>/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, "
    "batches.meta (the unpacked cifar-10-python.tar.gz)",
    "CIFAR100": "<root>/cifar-100-python/train, test, meta (the unpacked cifar-100-python.tar.gz)",
    "MNIST": f"<root>/MNIST/raw/{_MNIST_FILES}",
    "FashionMNIST": f"<root>/FashionMNIST/raw/{_MNIST_FILES}",
    "KMNIST": f"<root>/KMNIST/raw/{_MNIST_FILES}",
    "EMNIST": "<root>/EMNIST/raw/emnist-<split>-train-images-idx3-ubyte, "
    "emnist-<split>-train-labels-idx1-ubyte, emnist-<split>-test-... (unzipped)",
    "QMNIST": "<root>/QMNIST/raw/qmnist-train-images-idx3-ubyte, qmnist-train-labels-idx2-int, "
    "qmnist-test-... (unzipped)",
    "SVHN": "<root>/train_32x32.mat or <root>/test_32x32.mat (one per split)",
    "STL10": "<root>/stl10_binary/train_X.bin, train_y.bin, test_X.bin, test_y.bin, "
    "class_names.txt, fold_indices.txt",
}
#: One sample's shape (C, H, W) in the common datasets, before resize and crop.
SAMPLE_SHAPES = {
    "MNIST": (1, 28, 28),
    "FashionMNIST": (1, 28, 28),
    "KMNIST": (1, 28, 28),
    "EMNIST": (1, 28, 28),
    "QMNIST": (1, 28, 28),
    "CIFAR10": (3, 32, 32),
    "CIFAR100": (3, 32, 32),
    "SVHN": (3, 32, 32),
    "STL10": (3, 96, 96),
}
# Arguments this source sets itself.
_RESERVED = ("root", "train", "transform", "target_transform", "transforms", "download")


class TorchvisionDataParams(Params):
    """Which torchvision dataset, where its files are, and how to prepare its images."""

    dataset: str = Field(
        description="A torchvision.datasets class name: CIFAR10, MNIST, FashionMNIST, FakeData, ..."
    )
    root: SpecPath | None = Field(
        default=None,
        validate_default=True,
        description="Folder holding the dataset's files (required, except for FakeData).",
    )
    train: bool = Field(
        default=False,
        description="The training split instead of the test split (datasets with a train "
        "argument; others choose with kwargs, e.g. {split: test}).",
    )
    resize: SizeParam | None = Field(
        default=None,
        description="Resize first: an int sets the shorter side, [h, w] sets both.",
    )
    center_crop: SizeParam | None = Field(
        default=None, description="Then crop the center: an int for a square, or [h, w]."
    )
    normalize: Normalize | None = Field(
        default=None, description="Per-channel {mean: [...], std: [...]} after scaling to [0, 1]."
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="More constructor arguments, e.g. {split: test} or {size: 64} (not download).",
    )

    @field_validator("dataset")
    @classmethod
    def _known(cls, value: str) -> str:
        known = known_datasets()
        if value not in known:
            raise ValueError(
                f"unknown torchvision dataset '{value}'.{did_you_mean(value, known)} "
                f"Known: {', '.join(known)}"
            )
        return value

    @field_validator("root")
    @classmethod
    def _root_on_disk(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """When a spec is validated: the folder must exist (nothing is ever downloaded)."""
        name = info.data.get("dataset")
        if not (info.context or {}).get("base_dir") or name is None:
            return value
        if value is None and "root" in constructor_args(dataset_class(name)):
            raise ValueError(f"torchvision {name} needs root: a folder with {_layout(name)}")
        if value is not None and not value.is_dir():
            what = "is a file, not a folder" if value.exists() else "does not exist"
            raise ValueError(
                f"folder {value} {what}; torchvision {name} expects {_layout(name)}. "
                "Nothing is downloaded"
            )
        return value


class TorchvisionDataset(AuditDataset):
    """A torchvision dataset seen through the audit's shape contract."""

    def __init__(
        self,
        dataset: Any,
        labels: np.ndarray,
        class_names: list[str],
        params: TorchvisionDataParams,
        description: str,
    ) -> None:
        self.dataset = dataset
        self.labels = labels
        self.class_names = class_names
        self.feature_names = None
        self.modality = "image"
        self.params = params
        self.input_shape = tuple(self._sample(0).shape)
        self.description = description

    def get(self, indices: np.ndarray) -> torch.Tensor:
        indices = np.asarray(indices, dtype=np.int64)
        if len(indices) == 0:
            return torch.empty((0, *self.input_shape), dtype=torch.float32)
        samples = []
        for i in indices:
            sample = self._sample(int(i))
            if tuple(sample.shape) != self.input_shape:
                raise RunError(
                    f"torchvision {self.params.dataset} sample {int(i)} has shape "
                    f"{tuple(sample.shape)} but sample 0 has {self.input_shape}; set resize: "
                    "[h, w] or center_crop in the data block"
                )
            samples.append(sample)
        batch = torch.stack(samples)
        if self.params.normalize is not None:
            batch = self.params.normalize.apply(batch)
        return batch

    def _sample(self, index: int) -> torch.Tensor:
        image = self.dataset[index][0]
        return prepare(image, self.params.resize, self.params.center_crop)


class TorchvisionDataSource(DataSource):
    """A torchvision.datasets class over files on disk; never downloads."""

    name: ClassVar[str] = "torchvision"
    Params: ClassVar[type[TorchvisionDataParams]] = TorchvisionDataParams

    @classmethod
    def static_info(cls, params: TorchvisionDataParams) -> StaticInfo:  # type: ignore[override]
        """Image data; the shape where the dataset's sample size is known (a table of the
        common datasets, FakeData's ``image_size``), after resize and crop."""
        _arguments(constructor_args(dataset_class(params.dataset)), params)  # kwargs, train
        shape = SAMPLE_SHAPES.get(params.dataset)
        if params.dataset == "FakeData":
            size = params.kwargs.get("image_size", (3, 224, 224))
            if isinstance(size, list | tuple) and len(size) == 3:
                shape = tuple(int(side) for side in size)
        if shape is None:
            return StaticInfo("image", None, None, None)
        if params.normalize is not None:
            params.normalize.check_channels(shape[0], ("data", "normalize"))
        height, width = output_size(shape[1], shape[2], params.resize, params.center_crop)
        return StaticInfo("image", (shape[0], height, width), None, None)

    def load(self, params: TorchvisionDataParams) -> TorchvisionDataset:  # type: ignore[override]
        cls = dataset_class(params.dataset)
        accepted = constructor_args(cls)
        args = _arguments(accepted, params)
        dataset = _construct(cls, args, params)
        if len(dataset) == 0:
            raise SpecError.at(("data", "dataset"), f"torchvision {params.dataset} has no samples")
        labels = _checked(_labels(dataset, params.dataset), params.dataset)
        result = TorchvisionDataset(
            dataset, labels, _class_names(dataset, labels), params, _describe(args, params, labels)
        )
        if params.normalize is not None:
            params.normalize.check_channels(result.input_shape[0], ("data", "normalize"))
        return result


def known_datasets() -> list[str]:
    """Names of the dataset classes in ``torchvision.datasets``."""
    return sorted(
        name
        for name in torchvision.datasets.__all__
        if isinstance(getattr(torchvision.datasets, name, None), type)
        and issubclass(getattr(torchvision.datasets, name), torch.utils.data.Dataset)
        and name != "VisionDataset"
    )


def dataset_class(name: str) -> type:
    """The class ``torchvision.datasets.<name>``, or a SpecError with the closest name."""
    known = known_datasets()
    if name not in known:
        raise SpecError.at(
            ("data", "dataset"),
            f"unknown torchvision dataset '{name}'.{did_you_mean(name, known)} "
            f"Known: {', '.join(known)}",
        )
    return getattr(torchvision.datasets, name)


def constructor_args(cls: type) -> set[str]:
    """Names ``cls(...)`` takes, following ``**kwargs`` to the base class that receives them."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters.values()  # type: ignore[misc]
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    names.discard("self")
    return names


def _arguments(accepted: set[str], params: TorchvisionDataParams) -> dict[str, Any]:
    """Constructor arguments from the params; refuses what would download or clash."""
    name = params.dataset
    takes = ", ".join(sorted(accepted - set(_RESERVED)))
    for key in params.kwargs:
        if key == "download":
            raise SpecError.at(
                ("data", "kwargs", "download"),
                "download is not allowed: the auditor never downloads; put the dataset's files "
                "under root first",
            )
        if key in _RESERVED:
            raise SpecError.at(
                ("data", "kwargs", key),
                f"'{key}' is set by the torchvision data source; remove it from kwargs",
            )
        if key not in accepted:
            raise SpecError.at(
                ("data", "kwargs", key),
                f"torchvision.datasets.{name} takes no argument '{key}'."
                f"{did_you_mean(key, accepted)} It takes: {takes}",
            )
    args = dict(params.kwargs)
    if "root" in accepted:
        args["root"] = str(_existing_root(params))
    if "train" in accepted:
        args["train"] = params.train
    elif "train" in params.model_fields_set:
        raise SpecError.at(
            ("data", "train"),
            f"torchvision.datasets.{name} has no 'train' argument; choose its split in kwargs "
            f"(it takes: {takes})",
        )
    if "download" in accepted:
        args["download"] = False
    return args


def _existing_root(params: TorchvisionDataParams) -> Path:
    loc = ("data", "root")
    layout = _layout(params.dataset)
    if params.root is None:
        raise SpecError.at(loc, f"torchvision {params.dataset} needs root: a folder with {layout}")
    if not params.root.is_dir():
        what = "is a file, not a folder" if params.root.exists() else "does not exist"
        raise SpecError.at(
            loc,
            f"folder {params.root} {what}; torchvision {params.dataset} expects {layout}. "
            "Nothing is downloaded",
        )
    return params.root


def _construct(cls: type, args: dict[str, Any], params: TorchvisionDataParams) -> Any:
    """``cls(**args)``, with its complaints turned into errors that name the spec field."""
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise SpecError.at(
            ("data", "kwargs"),
            f"torchvision.datasets.{params.dataset} refused its arguments: {exc}",
        ) from exc
    except (RuntimeError, OSError) as exc:
        # torchvision says "Dataset not found or corrupted. You can use download=True ...":
        # keep its diagnosis, drop advice that does not apply, and say what should be on disk.
        detail = str(exc).split(" You can use download=True")[0].strip()
        raise SpecError.at(
            ("data", "root"),
            f"torchvision {params.dataset} found no usable data under {params.root} ({detail}); "
            f"expected {_layout(params.dataset)}. Nothing is downloaded",
        ) from exc


def _describe(args: dict[str, Any], params: TorchvisionDataParams, labels: np.ndarray) -> str:
    """E.g. ``torchvision MNIST (test) from /data/mnist: 10000 images``."""
    split = ""
    if "train" in args:
        split = " (train)" if args["train"] else " (test)"
    elif isinstance(args.get("split"), str):
        split = f" ({args['split']})"
    where = f" from {args['root']}" if "root" in args else ""
    return f"torchvision {params.dataset}{split}{where}: {len(labels)} images"


def _layout(name: str) -> str:
    return EXPECTED_LAYOUT.get(
        name, f"the files torchvision.datasets.{name} reads (see its documentation) under <root>"
    )


def _labels(dataset: Any, name: str) -> np.ndarray:
    """Class indices of every sample, read without decoding images where the dataset allows."""
    for attr in ("targets", "labels"):
        values = getattr(dataset, attr, None)
        if values is None:
            continue
        array = np.asarray(values.numpy() if isinstance(values, torch.Tensor) else values)
        if array.shape == (len(dataset),) and np.issubdtype(array.dtype, np.integer):
            return array.astype(np.int64)
    labels = []
    for i in range(len(dataset)):
        target = dataset[i][1]
        if isinstance(target, torch.Tensor) and target.numel() == 1:
            target = target.item()
        if not isinstance(target, int | np.integer):
            raise SpecError.at(
                ("data", "dataset"),
                f"torchvision {name} sample {i} has target {target!r}, not a class index; only "
                "classification datasets can be audited",
            )
        labels.append(int(target))
    return np.asarray(labels, dtype=np.int64)


def _checked(labels: np.ndarray, name: str) -> np.ndarray:
    if (labels < 0).any():
        first = int(np.flatnonzero(labels < 0)[0])
        raise SpecError.at(
            ("data", "dataset"),
            f"torchvision {name} sample {first} has label {int(labels[first])}: unlabeled "
            "samples cannot be audited; choose a labeled split in kwargs",
        )
    return labels


def _class_names(dataset: Any, labels: np.ndarray) -> list[str]:
    classes = getattr(dataset, "classes", None)
    if isinstance(classes, list | tuple) and len(classes) > int(labels.max()):
        return [str(c) for c in classes]
    num_classes = getattr(dataset, "num_classes", None)
    if isinstance(num_classes, int) and num_classes > int(labels.max()):
        return [str(i) for i in range(num_classes)]
    return default_class_names(labels)
