"""Features of a slice for the global explainers: tabular columns, or a pooled image grid.

Global explainers (surrogates, permutation importance) work on a table with one column
per named feature. Tabular inputs are that table already. Images are summarised by the
mean of each channel over the cells of a grid: 4x4 cells of an 8x8 digit are 2x2 pixel
blocks. The cells partition the image (rows are cut at ``floor(i * H / rows)``, columns
likewise), so every pixel belongs to exactly one cell even when the image size is not a
multiple of the grid; permutation importance permutes exactly these cells, so every global
explainer ranks the same named features.

Names: ``r{row}c{col}`` for one channel, ``ch{k}_r{row}c{col}`` for several channels, and
for tabular data the dataset's feature names (``x0, x1, ...`` when it has none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field

from auditor.errors import RunError, SpecError, SpecIssue
from auditor.explainers.base import ExplainContext, Explainer, issues_of
from auditor.explainers.names import tabular_names as tabular_names  # re-exported
from auditor.explainers.regions import cell_names, uses_regions
from auditor.modalities import modality_of

#: One side of the pooling grid in a plugin's Params.
GridSide = Annotated[int, Field(ge=1, le=1024)]
GRID_DESCRIPTION = "Rows and columns of the pooling grid for images (mean per cell and channel)."


@dataclass(frozen=True)
class Grid:
    """A partition of ``(C, H, W)`` images into ``rows x cols`` cells per channel."""

    channels: int
    height: int
    width: int
    rows: int
    cols: int

    @classmethod
    def for_shape(cls, input_shape: tuple[int, ...], grid: tuple[int, int]) -> Grid:
        """The grid for images of ``input_shape`` ``(C, H, W)``; a SpecError if it does not fit."""
        if len(input_shape) != 3:
            raise ValueError(f"images must be (C, H, W), got shape {tuple(input_shape)}")
        channels, height, width = (int(s) for s in input_shape)
        rows, cols = (int(g) for g in grid)
        if rows > height or cols > width:
            raise SpecError.at(
                ("params", "grid"),
                f"grid {rows}x{cols} does not fit images of {height}x{width} pixels: "
                f"expected at most {height} rows and {width} columns",
            )
        return cls(channels, height, width, rows, cols)

    @property
    def row_edges(self) -> list[int]:
        """Pixel rows where cells start, plus the height: cell row i is [e[i], e[i+1])."""
        return [i * self.height // self.rows for i in range(self.rows + 1)]

    @property
    def col_edges(self) -> list[int]:
        return [j * self.width // self.cols for j in range(self.cols + 1)]

    @property
    def n_features(self) -> int:
        return self.channels * self.rows * self.cols

    def feature_names(self) -> list[str]:
        """One name per feature, channel-major then row-major: ``r0c0, r0c1, ...``; for
        images larger than 32x32 the pixels each cell covers, ``rows 0-15, cols 16-31``."""
        readable = uses_regions(self.height, self.width)
        return cell_names(self.row_edges, self.col_edges, self.channels, readable=readable)

    def cell_map(self) -> np.ndarray:
        """``(H, W)`` int64: the cell number ``row * cols + col`` of every pixel."""
        row_of = np.repeat(np.arange(self.rows), np.diff(self.row_edges))
        col_of = np.repeat(np.arange(self.cols), np.diff(self.col_edges))
        return row_of[:, None] * self.cols + col_of[None, :]

    def element_features(self) -> np.ndarray:
        """``(C * H * W,)`` int64: the feature number of every element of a flattened image."""
        cells = self.rows * self.cols
        per_channel = np.arange(self.channels)[:, None, None] * cells + self.cell_map()[None]
        return per_channel.reshape(-1)

    def pool(self, images: torch.Tensor) -> np.ndarray:
        """``(N, C, H, W)`` -> ``(N, n_features)`` float64: the mean of each cell and channel."""
        x = images.detach().to("cpu", torch.float64).numpy()
        sums = np.add.reduceat(x, self.row_edges[:-1], axis=2)
        sums = np.add.reduceat(sums, self.col_edges[:-1], axis=3)
        counts = np.outer(np.diff(self.row_edges), np.diff(self.col_edges))
        return (sums / counts).reshape(len(x), -1)

    def to_pixels(self, values: np.ndarray) -> np.ndarray:
        """One value per feature -> ``(C, H, W)``: each pixel takes its cell's value (drawing)."""
        values = np.asarray(values)
        if values.shape != (self.n_features,):
            raise ValueError(f"expected {self.n_features} values, got shape {values.shape}")
        return values[self.element_features()].reshape(self.channels, self.height, self.width)

    def describe(self) -> dict[str, Any]:
        """JSON-serializable layout, kept in a GlobalExplanation's ``extra`` for drawing."""
        return {
            "channels": self.channels,
            "rows": self.rows,
            "cols": self.cols,
            "row_edges": self.row_edges,
            "col_edges": self.col_edges,
        }


@dataclass(frozen=True)
class SliceFeatures:
    """The slice as a table for scikit-learn, with a name per column."""

    table: np.ndarray  # (N, n_features) float64
    names: list[str]
    #: Feature number of every element of a flattened input (for permuting whole features).
    element_features: np.ndarray
    grid: Grid | None  # None for tabular data and texts
    #: What the columns are when there is no grid: ``tabular`` columns, or ``tokens`` of a
    #: bag of words (whose names the layout then carries: they depend on the slice).
    kind: str = "tabular"

    def layout(self) -> dict[str, Any]:
        """JSON-serializable description of the features, for ``extra``."""
        if self.grid is None and self.kind == "tokens":
            return {"kind": "tokens", "names": list(self.names)}
        if self.grid is None:
            return {"kind": "tabular"}
        return {"kind": "grid", **self.grid.describe()}


def slice_features(
    inputs: torch.Tensor,
    modality: str,
    feature_names: list[str] | None,
    grid: tuple[int, int],
    pad_id: int | None = None,
) -> SliceFeatures:
    """Tabular columns as they are, images pooled on ``grid``, texts as a bag of words;
    names for every column (``Modality.slice_features``)."""
    return modality_of(modality).slice_features(inputs, feature_names, grid, pad_id)


def holdout_split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, shuffled (train, held-out) sample numbers; a RunError if the slice is too small.

    The held-out part has ``ceil(n * test_fraction)`` samples (scikit-learn's rounding).
    """
    n_test = int(np.ceil(n * test_fraction))
    if n_test < 1 or n - n_test < 2:
        raise RunError(
            f"a surrogate needs at least 2 training and 1 held-out sample; the slice has {n} "
            f"samples and test_fraction={test_fraction} holds out {n_test}"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def check_grid(modality: str, input_shape: tuple[int, ...], grid: tuple[int, int]) -> None:
    """A SpecError now, before any work, if ``grid`` does not fit the images."""
    modality_of(modality).check_grid(tuple(input_shape), grid)


def check_square(name: str, side: int | None, modality: str, input_shape: tuple[int, ...]) -> None:
    """A SpecError at ``params.<name>`` if square cells of ``side`` pixels exceed the images.

    Shared by the params that cut images into squares (``feature_ablation`` and ``lime``
    ``cell``, ``deletion`` and ``insertion`` ``patch``): a square larger than the image
    would make the whole image one feature. None (the default size) and tabular data pass.
    """
    modality_of(modality).check_square(name, side, tuple(input_shape))


class GridExplainer(Explainer):
    """Base of global explainers over features: tabular columns or pooled image grid cells.

    Checks the ``grid`` param against the input when built, so that a grid larger than the
    image is a spec error before any work, and prepares the feature table of a slice.
    """

    scope = "global"

    def __init__(self, model: torch.nn.Module, params: Any, context: ExplainContext) -> None:
        super().__init__(model, params, context)
        check_grid(context.modality, context.input_shape, self.params.grid)

    @classmethod
    def input_issues(
        cls, params: Any, modality: str, input_shape: tuple[int, ...]
    ) -> list[SpecIssue]:
        return issues_of(lambda: check_grid(modality, input_shape, params.grid))

    def grid_features(self, inputs: torch.Tensor) -> Any:
        """The slice as a feature table (``slice_features``) for this explainer's grid."""
        ctx = self.context
        pad_id = getattr(ctx.embedding, "pad_id", None)  # text: the vocabulary's pad
        return slice_features(inputs, ctx.modality, ctx.feature_names, self.params.grid, pad_id)
