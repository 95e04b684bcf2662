"""Gallery pictures: an input sample, and its attribution laid over it on a fixed scale.

Composited with numpy and PIL rather than matplotlib: a gallery holds hundreds of small
pictures and this is about 100x faster per picture. The attribution colour comes from the
report's colour maps (``auditor.report.colormaps``); its opacity grows with |attribution|
relative to the explainer's scale, so weak attributions let the input show through.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from matplotlib import get_data_path
from PIL import Image, ImageDraw, ImageFont

from auditor.report.colormaps import INK, to_rgb

TARGET_SIDE = 160  # pixels: small inputs are enlarged (nearest neighbour) to about this size


def upscale_factor(height: int, width: int) -> int:
    return max(1, TARGET_SIDE // max(height, width, 1))


def _normalize(x: np.ndarray) -> np.ndarray:
    low, high = float(np.nanmin(x)), float(np.nanmax(x))
    if not np.isfinite(low) or not np.isfinite(high) or high <= low:
        return np.zeros_like(x, dtype=np.float64)
    return (np.nan_to_num(x, nan=low) - low) / (high - low)


def input_rgb(sample: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> ``(H, W, 3)`` float in [0, 1]: RGB for 3 channels, grey otherwise."""
    x = np.asarray(sample, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.shape[0] == 3:
        return np.moveaxis(_normalize(x), 0, -1)
    grey = _normalize(x.mean(axis=0))
    return np.repeat(grey[..., None], 3, axis=-1)


def _to_uint8(rgb: np.ndarray, factor: int) -> np.ndarray:
    image = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    if factor > 1:
        image = image.repeat(factor, axis=0).repeat(factor, axis=1)
    return image


def input_picture(sample: np.ndarray) -> np.ndarray:
    """The input as an enlarged ``(H', W', 3)`` uint8 picture."""
    rgb = input_rgb(sample)
    return _to_uint8(rgb, upscale_factor(*rgb.shape[:2]))


def overlay_picture(
    sample: np.ndarray, attribution: np.ndarray, scale: float, *, signed: bool
) -> np.ndarray:
    """The attribution map ``(H, W)`` over a faded grey input, on the fixed ``scale``."""
    base = input_rgb(sample).mean(axis=-1, keepdims=True)
    base = 0.55 + 0.4 * base  # a light grey copy: the attribution's colours stay readable
    heat = to_rgb(attribution, scale, signed=signed)
    strength = np.clip(np.abs(np.nan_to_num(attribution)) / (scale if scale > 0 else 1.0), 0, 1)
    alpha = (strength**0.5)[..., None]
    rgb = (1 - alpha) * base + alpha * heat
    return _to_uint8(rgb, upscale_factor(*attribution.shape[:2]))


def map_picture(values: np.ndarray, scale: float, *, signed: bool) -> np.ndarray:
    """An ``(H, W)`` map coloured on a fixed scale (``to_rgb``), enlarged like the inputs;
    missing values grey."""
    rgb = to_rgb(values, scale, signed=signed)
    rgb[~np.isfinite(values)] = 0xDD / 255
    return _to_uint8(rgb, upscale_factor(*values.shape[:2]))


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(Path(get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", size)


def map_mosaic(
    maps: list[tuple[str, np.ndarray]],
    scale: float,
    *,
    signed: bool,
    cols: int = 5,
    tile: int = 128,
    title: int = 20,
    gap: int = 20,
) -> np.ndarray:
    """Titled ``(H, W)`` maps tiled ``cols`` across on one colour scale, as one ``(H', W', 3)``
    uint8 picture (``tile`` pixels wide each, a ``title``-pixel caption above): one picture
    for the PDF to place instead of one per map and caption, each of which costs layout."""
    rows = -(-len(maps) // cols)
    band = round(title * 1.45)
    height = band + tile * max(m.shape[0] / m.shape[1] for _, m in maps)
    canvas = Image.new("RGB", (cols * tile + (cols - 1) * gap, rows * round(height + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (text, values) in enumerate(maps):
        r, c = divmod(i, cols)
        x, y = c * (tile + gap), r * round(height + gap)
        h, w = values.shape
        picture = Image.fromarray(map_picture(values, scale, signed=signed))
        filter_ = Image.Resampling.NEAREST if w <= tile else Image.Resampling.BOX
        canvas.paste(picture.resize((tile, max(1, round(tile * h / w))), filter_), (x, y + band))
        while len(text) > 2 and _font(title).getlength(text) > tile + gap * 0.8:
            text = text[:-2] + "…"
        draw.text((x + tile / 2, y + band - 4), text, fill=INK, font=_font(title), anchor="ms")
    return np.asarray(canvas)


def picture_ext(input_shape: list[int] | tuple[int, ...]) -> str:
    """PNG for small (blocky, enlarged) inputs, JPEG for photographs (far smaller files)."""
    return "png" if max(input_shape[-2:], default=0) <= 64 else "jpg"
