"""The image_folder data source on PNG files written to tmp_path with PIL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from auditor.data.image_folder import ImageFolderDataset, ImageFolderDataSource, ImageFolderParams
from auditor.errors import RunError, SpecError
from auditor.registries import datasets

RNG = np.random.default_rng(0)


def save(path: Path, pixels: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def rgb(height: int = 6, width: int = 5) -> np.ndarray:
    return RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def load(tmp_path: Path, **params: object) -> ImageFolderDataset:
    params.setdefault("root", "images")
    validated = ImageFolderParams.model_validate(params, context={"base_dir": tmp_path})
    return ImageFolderDataSource().load(validated)


def spec_error(tmp_path: Path, **params: object) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(SpecError) as info:
        load(tmp_path, **params)
    (issue,) = info.value.issues
    return issue.loc, issue.message


@pytest.fixture
def folder(tmp_path: Path) -> dict[str, np.ndarray]:
    """Two classes; ``dog`` has a nested folder; stray files are ignored."""
    root = tmp_path / "images"
    pixels = {
        "cat/b.png": save(root / "cat" / "b.png", rgb()),
        "cat/a.png": save(root / "cat" / "a.png", rgb()),
        "dog/x/c.PNG": save(root / "dog" / "x" / "c.PNG", rgb()),
    }
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()
    save(root / "dog" / ".hidden" / "d.png", rgb())
    return pixels


def test_registered_under_image_folder() -> None:
    assert datasets.get("image_folder") is ImageFolderDataSource


def test_classes_files_labels_and_pixels(tmp_path: Path, folder: dict[str, np.ndarray]) -> None:
    data = load(tmp_path)
    root = tmp_path / "images"
    assert data.modality == "image"
    assert data.class_names == ["cat", "dog"]
    assert data.files == [root / "cat" / "a.png", root / "cat" / "b.png", root / "dog/x/c.PNG"]
    assert data.labels.dtype == np.int64
    assert data.labels.tolist() == [0, 0, 1]
    assert data.input_shape == (3, 6, 5)
    assert data.feature_names is None
    got = data.get(np.array([2, 0]))
    assert got.dtype == torch.float32
    assert got.shape == (2, 3, 6, 5)
    expected = folder["dog/x/c.PNG"].transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(got[0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(got[1].numpy(), folder["cat/a.png"].transpose(2, 0, 1) / 255.0)
    assert data.get(np.zeros(0, dtype=np.int64)).shape == (0, 3, 6, 5)
    assert data.description == f"image folder {root}: 3 images in 2 classes"


def test_images_load_lazily(tmp_path: Path, folder: dict[str, np.ndarray]) -> None:
    data = load(tmp_path)
    # Pixels are read in get(): a change after loading shows up.
    new = save(tmp_path / "images" / "cat" / "a.png", rgb())
    np.testing.assert_allclose(data.get(np.array([0]))[0].numpy(), new.transpose(2, 0, 1) / 255.0)


def test_grayscale_and_normalize(tmp_path: Path, folder: dict[str, np.ndarray]) -> None:
    data = load(tmp_path, grayscale=True, normalize={"mean": [0.5], "std": [0.25]})
    assert data.input_shape == (1, 6, 5)
    got = data.get(np.array([0]))[0, 0].numpy()
    gray = np.asarray(Image.fromarray(folder["cat/a.png"]).convert("L")) / 255.0
    np.testing.assert_allclose(got, (gray - 0.5) / 0.25, atol=1e-5)


def test_normalize_per_channel(tmp_path: Path, folder: dict[str, np.ndarray]) -> None:
    mean, std = [0.1, 0.2, 0.3], [0.5, 1.0, 2.0]
    data = load(tmp_path, normalize={"mean": mean, "std": std})
    got = data.get(np.array([1]))[0].numpy()
    raw = folder["cat/b.png"].transpose(2, 0, 1) / 255.0
    expected = (raw - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_resize_and_center_crop(tmp_path: Path) -> None:
    root = tmp_path / "images"
    save(root / "a" / "wide.png", rgb(10, 20))
    save(root / "b" / "tall.png", rgb(30, 12))
    assert load(tmp_path, resize=[8, 9]).input_shape == (3, 8, 9)
    assert load(tmp_path, resize=6, center_crop=6).input_shape == (3, 6, 6)
    assert load(tmp_path, center_crop=[4, 7]).input_shape == (3, 4, 7)
    # An int resize keeps the aspect ratio, so different shapes still differ.
    loc, message = spec_error(tmp_path, resize=6)
    assert loc == ("data", "resize")
    assert message == (
        f"images differ in size after resize and crop (height x width): {root / 'a/wide.png'} is "
        f"6x12 but {root / 'b/tall.png'} is 15x6; set resize: [h, w] or center_crop so that "
        "every image has one size"
    )


def test_center_crop_takes_the_middle(tmp_path: Path) -> None:
    pixels = save(tmp_path / "images" / "a" / "p.png", rgb(8, 8))
    got = load(tmp_path, center_crop=4).get(np.array([0]))[0].numpy()
    np.testing.assert_allclose(got, pixels[2:6, 2:6].transpose(2, 0, 1) / 255.0, atol=1e-6)


def test_images_of_different_size_need_resize(tmp_path: Path) -> None:
    root = tmp_path / "images"
    save(root / "a" / "1.png", rgb(6, 5))
    save(root / "b" / "2.png", rgb(7, 5))
    assert spec_error(tmp_path) == (
        ("data", "resize"),
        f"images differ in size (height x width): {root / 'a/1.png'} is 6x5 but "
        f"{root / 'b/2.png'} is 7x5; set resize: [h, w] or center_crop so that every image has "
        "one size",
    )


def test_root_without_class_folders(tmp_path: Path) -> None:
    root = tmp_path / "images"
    save(root / "loose.png", rgb())
    assert spec_error(tmp_path) == (
        ("data", "root"),
        f"folder {root} has no class sub-folders; expected one folder of images per class, "
        f"e.g. {root / 'cat' / '0001.png'}",
    )


def test_class_folder_without_images(tmp_path: Path) -> None:
    root = tmp_path / "images"
    save(root / "a" / "1.png", rgb())
    (root / "b").mkdir()
    (root / "b" / "1.txt").write_text("text")
    assert spec_error(tmp_path, extensions=["png", ".JPG"]) == (
        ("data", "root"),
        f"class folder {root / 'b'} has no images (looked for .png, .jpg)",
    )


def test_unreadable_image(tmp_path: Path) -> None:
    root = tmp_path / "images"
    save(root / "a" / "1.png", rgb())
    (root / "a" / "2.png").write_bytes(b"not a png")
    loc, message = spec_error(tmp_path)
    assert loc == ("data", "root")
    assert message.startswith(f"{root / 'a' / '2.png'} is not a readable image: ")


def test_unreadable_image_with_a_fixed_size_fails_when_read(tmp_path: Path) -> None:
    # resize: [h, w] fixes the size, so files are not opened until get().
    root = tmp_path / "images"
    save(root / "a" / "1.png", rgb())
    (root / "a" / "2.png").write_bytes(b"not a png")
    data = load(tmp_path, resize=[4, 4])
    assert data.get(np.array([0])).shape == (1, 3, 4, 4)
    with pytest.raises(RunError) as info:
        data.get(np.array([1]))
    assert str(info.value).startswith(f"image {root / 'a' / '2.png'} could not be read: ")


def test_image_changed_after_loading(tmp_path: Path, folder: dict[str, np.ndarray]) -> None:
    data = load(tmp_path)
    path = tmp_path / "images" / "cat" / "b.png"
    save(path, rgb(9, 9))
    with pytest.raises(RunError) as info:
        data.get(np.array([1]))
    assert str(info.value) == f"image {path} came out with shape (3, 9, 9), expected (3, 6, 5)"


def test_params_are_checked(tmp_path: Path, folder: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValidationError) as info:
        ImageFolderParams.model_validate({"root": "nowhere"}, context={"base_dir": tmp_path})
    assert f"folder {tmp_path / 'nowhere'} does not exist" in str(info.value)
    for bad in (
        {"resize": 0},
        {"resize": [1, 2, 3]},
        {"normalize": {"mean": [0.5, 0.5], "std": [1.0]}},
        {"normalize": {"mean": [0.5], "std": [0.0]}},
        {"extensions": [""]},
        {"size": 4},
    ):
        with pytest.raises(ValidationError):
            ImageFolderParams.model_validate(
                {"root": "images", **bad}, context={"base_dir": tmp_path}
            )
    assert spec_error(tmp_path, normalize={"mean": [0.5, 0.5], "std": [1.0, 1.0]}) == (
        ("data", "normalize"),
        "normalize has 2 values per statistic but the images have 3 channels; give 1 or 3 values",
    )
