"""``DataSource.static_info``: modality, shape and names without loading the data."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from auditor.data.base import DataSource, StaticInfo
from auditor.data.image_folder import ImageFolderDataSource, ImageFolderParams
from auditor.data.sklearn_source import STATIC_INFO, SklearnDataSource, load_arrays
from auditor.data.tensors import TensorsDataSource, TensorsParams
from auditor.data.torchvision_source import TorchvisionDataParams, TorchvisionDataSource
from auditor.errors import SpecError


def _params(cls: type[DataSource], tmp_path: Path, **values: object):  # type: ignore[no-untyped-def]
    return cls.Params.model_validate(values, context={"base_dir": tmp_path})


@pytest.mark.parametrize("name", ["digits", "breast_cancer", "wine", "iris"])
def test_sklearn_table_matches_the_loaders(name: str) -> None:
    """The written-out table (no scikit-learn import at validate time) is what loads."""
    x, _, meta = load_arrays(name, "test")
    info = SklearnDataSource.static_info(SklearnDataSource.Params(name=name))  # type: ignore[call-arg]
    assert info == STATIC_INFO[name]
    assert info == StaticInfo(meta.modality, x.shape[1:], meta.feature_names, meta.class_names)


def test_sklearn_breast_cancer_names() -> None:
    info = STATIC_INFO["breast_cancer"]
    assert info.feature_names is not None
    assert info.feature_names[:2] == ["mean radius", "mean texture"]
    assert info.feature_names[10] == "radius error"
    assert info.feature_names[-1] == "worst fractal dimension"


def _png(path: Path, size: tuple[int, int], mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size).save(path)  # size is (width, height)


def test_image_folder_shape_from_the_first_image(tmp_path: Path) -> None:
    _png(tmp_path / "imgs" / "cat" / "a.png", (12, 10))
    _png(tmp_path / "imgs" / "dog" / "b.png", (12, 10))
    info = ImageFolderDataSource.static_info(_params(ImageFolderDataSource, tmp_path, root="imgs"))
    assert info == StaticInfo("image", (3, 10, 12), None, ["cat", "dog"])
    gray = _params(
        ImageFolderDataSource, tmp_path, root="imgs", grayscale=True, resize=5, center_crop=[4, 3]
    )
    assert ImageFolderDataSource.static_info(gray).input_shape == (1, 4, 3)
    resized = _params(ImageFolderDataSource, tmp_path, root="imgs", resize=5)
    assert ImageFolderDataSource.static_info(resized).input_shape == (3, 5, 6)


def test_image_folder_problems_found_statically(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    params: ImageFolderParams = _params(ImageFolderDataSource, tmp_path, root="empty")
    with pytest.raises(SpecError) as info:
        ImageFolderDataSource.static_info(params)
    assert [(i.loc, i.message) for i in info.value.issues] == [
        (
            ("data", "root"),
            f"folder {tmp_path / 'empty'} has no class sub-folders; expected one folder of "
            f"images per class, e.g. {tmp_path / 'empty' / 'cat' / '0001.png'}",
        )
    ]
    (tmp_path / "noimg" / "cat").mkdir(parents=True)
    (tmp_path / "noimg" / "cat" / "notes.txt").write_text("x")
    with pytest.raises(SpecError) as info:
        ImageFolderDataSource.static_info(_params(ImageFolderDataSource, tmp_path, root="noimg"))
    assert info.value.issues[0].message.startswith(
        f"class folder {tmp_path / 'noimg' / 'cat'} has no images (looked for .bmp, "
    )
    _png(tmp_path / "imgs" / "cat" / "a.png", (4, 4))
    normalized = _params(
        ImageFolderDataSource,
        tmp_path,
        root="imgs",
        normalize={"mean": [0.5, 0.5], "std": [0.2, 0.2]},
    )
    with pytest.raises(SpecError) as info:
        ImageFolderDataSource.static_info(normalized)
    assert [(i.loc, i.message) for i in info.value.issues] == [
        (
            ("data", "normalize"),
            "normalize has 2 values per statistic but the images have 3 channels; give 1 or 3 "
            "values",
        )
    ]


def _static_issues(tmp_path: Path, root: str) -> list[tuple[tuple[str | int, ...], str]]:
    params: ImageFolderParams = _params(ImageFolderDataSource, tmp_path, root=root)
    with pytest.raises(SpecError) as info:
        ImageFolderDataSource.static_info(params)
    return [(i.loc, i.message) for i in info.value.issues]


def test_image_folder_bad_first_images_are_spec_errors(tmp_path: Path) -> None:
    """What validate meets in the user's first image is a located spec error, never exit 3:
    a decompression bomb (PIL's DecompressionBombError is no OSError) and a corrupt header
    that PIL answers with ValueError."""
    _png(tmp_path / "bomb" / "cat" / "a.bmp", (4, 4))
    bmp = bytearray((tmp_path / "bomb" / "cat" / "a.bmp").read_bytes())
    bmp[18:26] = struct.pack("<ii", 20000, 20000)  # the header claims 400 million pixels
    (tmp_path / "bomb" / "cat" / "a.bmp").write_bytes(bytes(bmp))
    assert _static_issues(tmp_path, "bomb") == [
        (
            ("data", "root"),
            f"{tmp_path / 'bomb' / 'cat' / 'a.bmp'} is not a readable image: Image size "
            "(400000000 pixels) exceeds limit of 178956970 pixels, could be decompression bomb "
            "DOS attack.",
        )
    ]
    (tmp_path / "corrupt" / "cat").mkdir(parents=True)
    (tmp_path / "corrupt" / "cat" / "a.ppm").write_bytes(b"P6\n" + b"4" * 20 + b" 4\n255\n")
    assert _static_issues(tmp_path, "corrupt") == [
        (
            ("data", "root"),
            f"{tmp_path / 'corrupt' / 'cat' / 'a.ppm'} is not a readable image: "
            "b'Token too long in file header: 44444444444'",
        )
    ]


@pytest.mark.parametrize("method", ["iterdir", "rglob"])
def test_image_folder_that_cannot_be_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """A folder the OS will not list (tests run as root here, so chmod would not do: the
    listing itself raises as it would for another user)."""
    _png(tmp_path / "imgs" / "cat" / "a.png", (4, 4))
    denied = tmp_path / "imgs" if method == "iterdir" else tmp_path / "imgs" / "cat"

    def refuse(self: Path, *args: object) -> Iterator[Path]:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, method, refuse)
    assert _static_issues(tmp_path, "imgs") == [
        (("data", "root"), f"folder {denied} could not be read: Permission denied")
    ]


def test_tensors_shape_from_npy_and_npz_headers(tmp_path: Path) -> None:
    np.save(tmp_path / "tab.npy", np.zeros((7, 5), dtype=np.float32))
    np.save(tmp_path / "img.npy", np.zeros((7, 8, 9), dtype=np.uint8))
    np.save(tmp_path / "y.npy", np.zeros(7, dtype=np.int64))
    np.savez(tmp_path / "arr.npz", x=np.zeros((3, 2, 4, 4)), y=np.zeros(3, dtype=np.int64))
    np.savez(tmp_path / "keys.npz", inputs=np.zeros((3, 6)), labels=np.zeros(3))
    tab = _params(
        TensorsDataSource,
        tmp_path,
        path="tab.npy",
        labels="y.npy",
        feature_names=["a", "b", "c", "d", "e"],
        class_names=["no", "yes"],
    )
    assert TensorsDataSource.static_info(tab) == StaticInfo(
        "tabular", (5,), ["a", "b", "c", "d", "e"], ["no", "yes"]
    )
    img = _params(TensorsDataSource, tmp_path, path="img.npy", labels="y.npy")
    assert TensorsDataSource.static_info(img) == StaticInfo("image", (1, 8, 9), None, None)
    npz = _params(TensorsDataSource, tmp_path, path="arr.npz")
    assert TensorsDataSource.static_info(npz) == StaticInfo("image", (2, 4, 4), None, None)
    keyed = _params(TensorsDataSource, tmp_path, path="keys.npz", inputs_key="inputs")
    assert TensorsDataSource.static_info(keyed) == StaticInfo("tabular", (6,), None, None)


def test_tensors_without_a_cheap_shape(tmp_path: Path) -> None:
    """A .pt file needs unpickling; a missing key or a rank that does not fit is load()'s
    to report: static_info says nothing rather than guess."""
    torch.save({"inputs": torch.zeros(2, 3), "labels": torch.zeros(2)}, tmp_path / "d.pt")
    np.savez(tmp_path / "other.npz", a=np.zeros((3, 6)))
    np.save(tmp_path / "tab.npy", np.zeros((7, 5), dtype=np.float32))
    for values in (
        {"path": "d.pt"},
        {"path": "other.npz"},
        {"path": "tab.npy", "modality": "image"},
    ):
        params: TensorsParams = _params(TensorsDataSource, tmp_path, **values)
        assert TensorsDataSource.static_info(params) is None


def test_tensors_header_is_read_without_the_data(tmp_path: Path) -> None:
    """A file whose data part is cut off still has a readable header (nothing else is read)."""
    np.save(tmp_path / "big.npy", np.zeros((1000, 64), dtype=np.float32))
    raw = (tmp_path / "big.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[:200])
    params = _params(TensorsDataSource, tmp_path, path="cut.npy")
    assert TensorsDataSource.static_info(params) == StaticInfo("tabular", (64,), None, None)


def test_torchvision_known_shapes(tmp_path: Path) -> None:
    (tmp_path / "mnist").mkdir()
    mnist: TorchvisionDataParams = _params(
        TorchvisionDataSource, tmp_path, dataset="MNIST", root="mnist", resize=[14, 16]
    )
    assert TorchvisionDataSource.static_info(mnist) == StaticInfo("image", (1, 14, 16), None, None)
    fake = _params(
        TorchvisionDataSource, tmp_path, dataset="FakeData", kwargs={"image_size": [1, 6, 7]}
    )
    assert TorchvisionDataSource.static_info(fake).input_shape == (1, 6, 7)
    (tmp_path / "places").mkdir()
    other = _params(TorchvisionDataSource, tmp_path, dataset="Flowers102", root="places")
    assert TorchvisionDataSource.static_info(other) == StaticInfo("image", None, None, None)


def test_torchvision_kwargs_are_checked_statically(tmp_path: Path) -> None:
    fake = _params(TorchvisionDataSource, tmp_path, dataset="FakeData", kwargs={"sise": 3})
    with pytest.raises(SpecError) as info:
        TorchvisionDataSource.static_info(fake)
    assert [(i.loc, i.message) for i in info.value.issues] == [
        (
            ("data", "kwargs", "sise"),
            "torchvision.datasets.FakeData takes no argument 'sise'. Did you mean: size? It "
            "takes: image_size, num_classes, random_offset, size",
        )
    ]


def test_default_is_none() -> None:
    class Plain(DataSource):
        name = "plain"

        def load(self, params):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    assert Plain.static_info(Plain.Params()) is None
