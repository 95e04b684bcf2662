"""Image preparation shared by the image data sources.

Every image source hands the model float32 ``(C, H, W)`` tensors in ``[0, 1]``, optionally
normalized per channel. Resizing follows torchvision's conventions (an int resizes the
shorter side, ``[h, w]`` is exact; a center crop larger than the image pads with zeros),
but the size arithmetic lives here so that a source can predict every image's final size
from its header alone, without decoding it.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import torch
from PIL import Image
from pydantic import Field, model_validator
from torchvision.transforms import functional as tvf

from auditor.errors import SpecError
from auditor.plugin import Params

#: One side of an image, in pixels.
Side = Annotated[int, Field(ge=1, le=16384)]
#: A size param: an int (see the module docstring) or ``[height, width]``.
SizeParam = Side | tuple[Side, Side]

# PIL modes that torchvision's to_tensor turns into the channels they show; others are
# converted first (a palette image would otherwise become one channel of palette indices).
_KEPT_MODES = {"L", "RGB", "I", "I;16", "F"}
_GRAY_MODES = {"1", "LA", "La"}


class Normalize(Params):
    """Per-channel ``(x - mean) / std``, applied after scaling to ``[0, 1]``."""

    mean: list[Annotated[float, Field(ge=-1000.0, le=1000.0)]] = Field(
        min_length=1, max_length=64, description="Mean per channel (one value for all channels)."
    )
    std: list[Annotated[float, Field(gt=0.0, le=1000.0)]] = Field(
        min_length=1, max_length=64, description="Standard deviation per channel, > 0."
    )

    @model_validator(mode="after")
    def _same_length(self) -> Normalize:
        if len(self.mean) != len(self.std):
            raise ValueError(
                f"mean has {len(self.mean)} values but std has {len(self.std)}; give one per "
                "channel for both"
            )
        return self

    def check_channels(self, channels: int, loc: tuple[str | int, ...]) -> None:
        """Raise a SpecError at ``loc`` unless there is one value, or one per channel."""
        if len(self.mean) not in (1, channels):
            raise SpecError.at(
                loc,
                f"normalize has {len(self.mean)} values per statistic but the images have "
                f"{channels} channel{'s' if channels != 1 else ''}; give "
                f"{'1 value' if channels == 1 else f'1 or {channels} values'}",
            )

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Normalize a ``(N, C, H, W)`` or ``(C, H, W)`` tensor; returns a new tensor."""
        mean = torch.tensor(self.mean, dtype=images.dtype).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype).view(-1, 1, 1)
        return (images - mean) / std


def resized_size(height: int, width: int, resize: SizeParam) -> tuple[int, int]:
    """``(h, w)`` after ``resize``: an int sets the shorter side and keeps the aspect ratio."""
    if isinstance(resize, tuple):
        return resize
    if width <= height:
        return int(resize * height / width), resize
    return resize, int(resize * width / height)


def output_size(
    height: int, width: int, resize: SizeParam | None, center_crop: SizeParam | None
) -> tuple[int, int]:
    """``(h, w)`` of an image of this size after the resize and the center crop."""
    if resize is not None:
        height, width = resized_size(height, width, resize)
    if center_crop is not None:
        height, width = _pair(center_crop)
    return height, width


def resize_and_crop(
    image: Image.Image, resize: SizeParam | None, center_crop: SizeParam | None
) -> Image.Image:
    """Apply the resize (bilinear, antialiased by PIL) and then the center crop."""
    if resize is not None:
        height, width = resized_size(image.height, image.width, resize)
        if (height, width) != (image.height, image.width):
            image = image.resize((width, height), Image.Resampling.BILINEAR)
    if center_crop is not None:
        crop_h, crop_w = _pair(center_crop)
        top, left = _crop_start(image.height, crop_h), _crop_start(image.width, crop_w)
        # PIL fills the part of the box outside the image with zeros, as torchvision pads.
        image = image.crop((left, top, left + crop_w, top + crop_h))
    return image


def to_chw_float(sample: Any) -> torch.Tensor:
    """A PIL image, an ``(H, W[, C])`` array or a ``([C,] H, W)`` tensor -> float32 CHW.

    Integer pixels are scaled to ``[0, 1]``; float pixels are taken as they are.
    """
    if isinstance(sample, Image.Image):
        if sample.mode in _GRAY_MODES:
            sample = sample.convert("L")
        elif sample.mode not in _KEPT_MODES:
            sample = sample.convert("RGB")
        return tvf.to_tensor(sample).to(torch.float32)
    if isinstance(sample, np.ndarray):
        if sample.ndim not in (2, 3):
            raise ValueError(f"an image array must be (H, W) or (H, W, C), got {sample.shape}")
        pixels = torch.from_numpy(np.array(sample))  # a copy: the caller's array stays as is
        return _scale(pixels.permute(2, 0, 1) if pixels.ndim == 3 else pixels[None])
    if isinstance(sample, torch.Tensor):
        if sample.ndim not in (2, 3):
            raise ValueError(
                f"an image tensor must be (H, W) or (C, H, W), got {tuple(sample.shape)}"
            )
        return _scale(sample[None] if sample.ndim == 2 else sample)
    raise TypeError(f"cannot turn a {type(sample).__name__} into an image tensor")


def prepare(
    sample: Any, resize: SizeParam | None = None, center_crop: SizeParam | None = None
) -> torch.Tensor:
    """``to_chw_float`` after the resize and crop (non-PIL samples go through PIL for those)."""
    if resize is not None or center_crop is not None:
        if not isinstance(sample, Image.Image):
            sample = tvf.to_pil_image(sample)
        sample = resize_and_crop(sample, resize, center_crop)
    return to_chw_float(sample)


def _scale(chw: torch.Tensor) -> torch.Tensor:
    if chw.dtype == torch.uint8:
        return chw.to(torch.float32) / 255.0
    if chw.dtype == torch.bool:
        return chw.to(torch.float32)
    if not chw.is_floating_point():
        raise ValueError(f"image pixels must be uint8 or float, got {chw.dtype}")
    return chw.to(torch.float32)


def _crop_start(size: int, crop: int) -> int:
    """Where a centered crop starts; negative (padding) when the crop is the larger."""
    if crop > size:
        return -((crop - size) // 2)  # torchvision pads the smaller half before
    return round((size - crop) / 2.0)


def _pair(size: SizeParam) -> tuple[int, int]:
    return size if isinstance(size, tuple) else (size, size)
