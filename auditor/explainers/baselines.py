"""Reference inputs for path and perturbation methods."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

BaselineKind = Literal["zeros", "mean", "blur", "uniform"]


def make_baseline(
    kind: BaselineKind,
    inputs: torch.Tensor,
    background: torch.Tensor | None,
    *,
    seed: int = 0,
    blur_sigma: float = 2.0,
) -> torch.Tensor:
    """A baseline with the shape of ``inputs``.

    zeros: all zero; mean: the mean of the background samples (the slice); blur: a
    Gaussian blur of each input (images only); uniform: noise in the inputs' range,
    drawn from a generator seeded with ``seed``.
    """
    if kind == "zeros":
        return torch.zeros_like(inputs)
    if kind == "mean":
        if background is None:
            raise ValueError("baseline 'mean' needs background samples")
        mean = background.mean(dim=0, keepdim=True).to(inputs.device)
        return mean.expand_as(inputs).clone()
    if kind == "blur":
        if inputs.dim() != 4:
            raise ValueError("baseline 'blur' applies to images (N, C, H, W) only")
        return gaussian_blur(inputs, blur_sigma)
    if kind == "uniform":
        gen = torch.Generator().manual_seed(seed)
        low, high = float(inputs.min()), float(inputs.max())
        noise = torch.rand(inputs.shape, generator=gen, dtype=inputs.dtype).to(inputs.device)
        return low + (high - low) * noise
    raise ValueError(f"unknown baseline {kind!r}")


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding."""
    radius = max(1, int(3 * sigma))
    coords = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    channels = images.shape[1]
    pad_h = min(radius, images.shape[2] - 1)
    pad_w = min(radius, images.shape[3] - 1)
    out = images
    kx = kernel[radius - pad_w : radius + pad_w + 1]
    kx = (kx / kx.sum()).view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    out = F.conv2d(F.pad(out, (pad_w, pad_w, 0, 0), mode="reflect"), kx, groups=channels)
    ky = kernel[radius - pad_h : radius + pad_h + 1]
    ky = (ky / ky.sum()).view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    out = F.conv2d(F.pad(out, (0, 0, pad_h, pad_h), mode="reflect"), ky, groups=channels)
    return out
