"""Names and layout of the features an image ranking is over: pixels, or regions.

An image up to ``PIXEL_LIMIT`` pixels on each side (8x8 digits, 32x32 CIFAR) is ranked pixel
by pixel, ``r{row}c{col}``. A larger image is ranked by regions: single pixels of a 224x224
image say little, and the pixels of an upsampled Grad-CAM map tie in whole blocks. Local
explainers use a ``REGIONS_PER_SIDE`` x ``REGIONS_PER_SIDE`` grid of patches sized from the
image; global explainers use their own (permutation) grid. Regions are named by the pixels
they cover, ``rows 0-15, cols 16-31`` (inclusive), so a name means the same whichever
explainer ranked it and a spec's ``must_include`` can say which part of the image it means.

Cells partition the image as ``auditor.explainers.grid.Grid`` does: row ``i`` of ``rows``
starts at pixel ``floor(i * H / rows)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Images with both sides at most this many pixels are ranked per pixel.
PIXEL_LIMIT = 32
#: Regions along each side of a larger image, for local explainers' rankings.
REGIONS_PER_SIDE = 8


def uses_regions(height: int, width: int) -> bool:
    """Whether rankings of ``height x width`` images are over regions rather than pixels."""
    return height > PIXEL_LIMIT or width > PIXEL_LIMIT


def edges(size: int, parts: int) -> list[int]:
    """Where each of ``parts`` cells along a side of ``size`` pixels starts, plus ``size``."""
    return [i * size // parts for i in range(parts + 1)]


def span(start: int, stop: int, unit: str) -> str:
    """``rows 0-15`` for pixels [0, 16); ``row 3`` for one pixel."""
    last = stop - 1
    return f"{unit} {start}" if last == start else f"{unit}s {start}-{last}"


def region_name(row_start: int, row_stop: int, col_start: int, col_stop: int) -> str:
    """The name of the pixels [row_start, row_stop) x [col_start, col_stop)."""
    return f"{span(row_start, row_stop, 'row')}, {span(col_start, col_stop, 'col')}"


def cell_names(
    row_edges: list[int], col_edges: list[int], channels: int = 1, *, readable: bool = True
) -> list[str]:
    """One name per cell (channel-major, then row-major).

    ``readable``: ``rows 0-15, cols 16-31`` (``ch1: rows ...`` with several channels);
    otherwise the cell's grid coordinates ``r{i}c{j}`` (``ch{k}_r{i}c{j}``), the names grid
    features of small images have always had.
    """
    rows, cols = len(row_edges) - 1, len(col_edges) - 1
    if readable:
        cells = [
            region_name(row_edges[i], row_edges[i + 1], col_edges[j], col_edges[j + 1])
            for i in range(rows)
            for j in range(cols)
        ]
        if channels == 1:
            return cells
        return [f"ch{k}: {cell}" for k in range(channels) for cell in cells]
    cells = [f"r{i}c{j}" for i in range(rows) for j in range(cols)]
    if channels == 1:
        return cells
    return [f"ch{k}_{cell}" for k in range(channels) for cell in cells]


@dataclass(frozen=True)
class Regions:
    """A partition of an ``height x width`` image into rectangular regions (channels merged)."""

    height: int
    width: int
    row_edges: tuple[int, ...]
    col_edges: tuple[int, ...]

    @classmethod
    def for_image(cls, height: int, width: int) -> Regions:
        """``REGIONS_PER_SIDE`` regions along each side (fewer on a side with fewer pixels)."""
        rows, cols = min(height, REGIONS_PER_SIDE), min(width, REGIONS_PER_SIDE)
        return cls(height, width, tuple(edges(height, rows)), tuple(edges(width, cols)))

    @property
    def count(self) -> int:
        return (len(self.row_edges) - 1) * (len(self.col_edges) - 1)

    def names(self) -> list[str]:
        return cell_names(list(self.row_edges), list(self.col_edges))

    def pool(self, maps: np.ndarray) -> np.ndarray:
        """``(N, H, W)`` -> ``(N, regions)`` float64: the mean of each region."""
        x = np.asarray(maps, dtype=np.float64)
        sums = np.add.reduceat(x, list(self.row_edges[:-1]), axis=1)
        sums = np.add.reduceat(sums, list(self.col_edges[:-1]), axis=2)
        counts = np.outer(np.diff(self.row_edges), np.diff(self.col_edges))
        return (sums / counts).reshape(len(x), -1)

    def to_pixels(self, values: np.ndarray) -> np.ndarray:
        """One value per region -> ``(H, W)``: each pixel takes its region's value."""
        rows, cols = len(self.row_edges) - 1, len(self.col_edges) - 1
        cells = np.asarray(values).reshape(rows, cols)
        row_of = np.repeat(np.arange(rows), np.diff(self.row_edges))
        col_of = np.repeat(np.arange(cols), np.diff(self.col_edges))
        return cells[row_of[:, None], col_of[None, :]]


def image_regions(input_shape: tuple[int, ...]) -> Regions | None:
    """The regions a local ranking of ``(C, H, W)`` images is over; None: it ranks pixels."""
    height, width = (int(s) for s in input_shape[-2:])
    return Regions.for_image(height, width) if uses_regions(height, width) else None


def image_feature_names(input_shape: tuple[int, ...]) -> list[str]:
    """Names of a local image ranking's features: pixels ``r{row}c{col}`` or regions."""
    regions = image_regions(input_shape)
    if regions is not None:
        return regions.names()
    height, width = (int(s) for s in input_shape[-2:])
    return [f"r{r}c{c}" for r in range(height) for c in range(width)]


def layout_names(layout: dict) -> list[str] | None:
    """Names of a global explainer's features from its stored grid layout (``extra
    ["features"]``, see ``Grid.describe``): what ``Grid.feature_names`` named them. None
    when the layout is not a grid."""
    if layout.get("kind") != "grid":
        return None
    row_edges, col_edges = layout.get("row_edges"), layout.get("col_edges")
    channels = int(layout.get("channels", 1))
    if row_edges and col_edges:
        readable = uses_regions(row_edges[-1], col_edges[-1])
        return cell_names(list(row_edges), list(col_edges), channels, readable=readable)
    rows, cols = int(layout["rows"]), int(layout["cols"])
    return cell_names(edges(rows, rows), edges(cols, cols), channels, readable=False)
