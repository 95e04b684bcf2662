"""Shared image preparation: size arithmetic, conversion to float CHW, normalization."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError
from torchvision.transforms import functional as tvf

from auditor.data.transforms import (
    Normalize,
    output_size,
    prepare,
    resize_and_crop,
    resized_size,
    to_chw_float,
)
from auditor.errors import SpecError

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(("height", "width"), [(10, 20), (30, 12), (7, 7), (13, 100)])
@pytest.mark.parametrize("resize", [6, 9, (5, 11)])
def test_size_arithmetic_matches_torchvision_and_pil(
    height: int, width: int, resize: int | tuple[int, int]
) -> None:
    image = Image.fromarray(RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8))
    target = list(resize) if isinstance(resize, tuple) else resize
    expected = tvf.resize(image, target).size[::-1]  # PIL size is (w, h)
    assert resized_size(height, width, resize) == expected
    done = resize_and_crop(image, resize, None)
    assert (done.height, done.width) == expected


def test_output_size_with_crop() -> None:
    assert output_size(10, 20, None, None) == (10, 20)
    assert output_size(10, 20, 5, None) == (5, 10)
    assert output_size(10, 20, 5, 4) == (4, 4)
    assert output_size(10, 20, None, (3, 8)) == (3, 8)


def test_center_crop_matches_torchvision_including_padding() -> None:
    image = Image.fromarray(RNG.integers(0, 256, size=(9, 7, 3), dtype=np.uint8))
    for crop in (4, (5, 3), 12):
        ours = np.asarray(resize_and_crop(image, None, crop))
        theirs = np.asarray(tvf.center_crop(image, list(crop) if isinstance(crop, tuple) else crop))
        np.testing.assert_array_equal(ours, theirs)


def test_to_chw_float_from_pil_modes() -> None:
    pixels = RNG.integers(0, 256, size=(4, 3, 3), dtype=np.uint8)
    rgb = to_chw_float(Image.fromarray(pixels))
    assert rgb.dtype == torch.float32
    np.testing.assert_allclose(rgb.numpy(), pixels.transpose(2, 0, 1) / 255.0, atol=1e-6)
    gray = to_chw_float(Image.fromarray(pixels[..., 0]))
    assert gray.shape == (1, 4, 3)
    # A palette image gives its colors, not its palette indices.
    palette = Image.fromarray(pixels).convert("P")
    assert to_chw_float(palette).shape == (3, 4, 3)
    rgba = Image.fromarray(np.dstack([pixels, np.full((4, 3), 7, np.uint8)]))
    np.testing.assert_allclose(to_chw_float(rgba).numpy(), rgb.numpy())
    assert to_chw_float(Image.fromarray(pixels[..., 0] > 100)).shape == (1, 4, 3)


def test_to_chw_float_from_arrays_and_tensors() -> None:
    hwc = RNG.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    got = to_chw_float(hwc)
    np.testing.assert_allclose(got.numpy(), hwc.transpose(2, 0, 1) / 255.0, atol=1e-6)
    assert to_chw_float(hwc[..., 0]).shape == (1, 4, 5)
    chw = torch.rand(2, 4, 5, dtype=torch.float64)
    same = to_chw_float(chw)
    assert same.dtype == torch.float32
    torch.testing.assert_close(same, chw.float())
    ones = to_chw_float(torch.ones(4, 5, dtype=torch.uint8))
    torch.testing.assert_close(ones, torch.full((1, 4, 5), 1 / 255))
    with pytest.raises(ValueError, match=r"an image tensor must be \(H, W\) or \(C, H, W\)"):
        to_chw_float(torch.zeros(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"image pixels must be uint8 or float, got torch\.int64"):
        to_chw_float(torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="cannot turn a str into an image tensor"):
        to_chw_float("image.png")


def test_prepare_resizes_tensors_through_pil() -> None:
    got = prepare(torch.rand(3, 10, 20), resize=5, center_crop=4)
    assert got.shape == (3, 4, 4)
    assert got.dtype == torch.float32


def test_normalize() -> None:
    norm = Normalize(mean=[0.5, 0.0], std=[0.5, 2.0])
    images = torch.ones(3, 2, 2, 2)
    got = norm.apply(images)
    assert got[:, 0].unique().tolist() == [1.0]
    assert got[:, 1].unique().tolist() == [0.5]
    assert images.unique().tolist() == [1.0]  # the input is left alone
    norm.check_channels(2, ("data", "normalize"))
    Normalize(mean=[0.5], std=[0.2]).check_channels(3, ("data", "normalize"))
    with pytest.raises(SpecError) as info:
        norm.check_channels(3, ("data", "normalize"))
    assert str(info.value) == (
        "<spec> data.normalize: normalize has 2 values per statistic but the images have 3 "
        "channels; give 1 or 3 values"
    )


def test_normalize_params() -> None:
    with pytest.raises(ValidationError) as info:
        Normalize.model_validate({"mean": [0.5, 0.5], "std": [0.5]})
    assert info.value.errors()[0]["msg"] == (
        "Value error, mean has 2 values but std has 1; give one per channel for both"
    )
    with pytest.raises(ValidationError):
        Normalize.model_validate({"mean": [0.5], "std": [-1.0]})
    with pytest.raises(ValidationError):
        Normalize.model_validate({"mean": [0.5], "std": [1.0], "inplace": True})
