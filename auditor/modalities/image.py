"""Images ``(C, H, W)``: units are pixels (channels averaged), ranked per pixel up to 32x32
and per region above (``auditor.explainers.regions``); perturbations remove square cells."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from auditor.errors import SpecError
from auditor.modalities.base import Modality, register

if TYPE_CHECKING:
    import torch

    from auditor.explainers.grid import SliceFeatures

#: Cells per side of the default grid of LIME, feature ablation and occlusion.
GRID_CELLS = 8
#: Patches per side of deletion/insertion's default patch.
PATCHES_PER_SIDE = 16


class ImageModality(Modality):
    name: ClassVar[str] = "image"
    spatial: ClassVar[bool] = True
    size_word: ClassVar[str] = "image size"

    def magnitude(self, attributions: np.ndarray) -> np.ndarray:
        a = np.abs(np.asarray(attributions, dtype=np.float64))
        if a.ndim != 4:
            raise ValueError(f"image attributions must be (N, C, H, W), got shape {a.shape}")
        return a.mean(axis=1).reshape(len(a), -1)

    def signed(self, attributions: np.ndarray) -> np.ndarray:
        a = np.asarray(attributions)
        if a.ndim == 4:
            a = a.mean(axis=1)
        return a.reshape(len(a), -1)

    def sample_map(self, attribution: np.ndarray) -> np.ndarray:
        a = np.abs(np.asarray(attribution, dtype=np.float64))
        return a.mean(axis=0) if a.ndim == 3 else a.reshape(-1)

    def unit_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape[1:])

    def ranked_features(
        self, input_shape: tuple[int, ...] | None, feature_names: list[str] | None
    ) -> list[str] | None:
        from auditor.explainers.regions import image_feature_names

        return None if input_shape is None else image_feature_names(tuple(input_shape))

    def pool_units(self, magnitude: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
        from auditor.explainers.regions import image_regions

        regions = image_regions(tuple(input_shape))
        if regions is None:
            return magnitude
        return regions.pool(magnitude.reshape(len(magnitude), *input_shape[1:]))

    def ranks_regions(self, input_shape: tuple[int, ...]) -> bool:
        from auditor.explainers.regions import image_regions

        return image_regions(tuple(input_shape)) is not None

    def global_features(
        self,
        grid: tuple[int, int] | None,
        input_shape: tuple[int, ...] | None,
        feature_names: list[str] | None,
    ) -> list[str] | None:
        from auditor.explainers.grid import Grid

        if grid is None or input_shape is None:
            return None
        try:
            return Grid.for_shape(tuple(input_shape), grid).feature_names()
        except (SpecError, ValueError):  # a grid that does not fit is reported with its params
            return None

    def feature_mask(self, shape: tuple[int, ...], cell: int | None) -> torch.Tensor:
        """The grid cell of side ``cell`` (default: ``ceil(max(H, W) / 8)``, an 8x8 grid)
        that holds each pixel, numbered row by row, the same over every channel."""
        import torch

        channels, height, width = shape
        if cell is None:
            cell = -(-max(height, width) // GRID_CELLS)
        rows = torch.arange(height) // cell
        cols = torch.arange(width) // cell
        per_row = (width + cell - 1) // cell
        grid = rows[:, None] * per_row + cols[None, :]
        return grid.unsqueeze(0).expand(channels, height, width).contiguous()

    def perturbation_groups(
        self, input_shape: tuple[int, ...], patch: int | None
    ) -> tuple[torch.Tensor, int]:
        """Patches of ``patch`` x ``patch`` pixels over all channels, numbered row by row
        (edge patches may be smaller)."""
        if len(input_shape) != 3:
            return super().perturbation_groups(input_shape, patch)
        import torch

        channels, height, width = input_shape
        side = patch or default_patch(input_shape)
        cols = math.ceil(width / side)
        rows = torch.arange(height) // side
        grid = rows[:, None] * cols + (torch.arange(width) // side)[None, :]
        return grid.expand(channels, height, width).clone(), math.ceil(height / side) * cols

    def group_label(self, input_shape: tuple[int, ...], patch: int | None) -> str:
        side = patch or default_patch(input_shape)
        return f"patches of {side}x{side} pixels"

    def check_square(self, name: str, side: int | None, input_shape: tuple[int, ...]) -> None:
        if side is None or len(input_shape) != 3:
            return
        height, width = (int(s) for s in input_shape[1:])
        if side > max(height, width):
            raise SpecError.at(
                ("params", name),
                f"{name} {side} is larger than the images' {height}x{width} pixels: "
                f"expected at most {max(height, width)}",
            )

    def check_grid(self, input_shape: tuple[int, ...], grid: tuple[int, int]) -> None:
        from auditor.explainers.grid import Grid

        Grid.for_shape(tuple(input_shape), grid)

    def window_dims(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape[1:])

    def default_window(self, dims: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(-(-s // GRID_CELLS) for s in dims)

    def full_window(
        self, input_shape: tuple[int, ...], window: tuple[int, ...], stride: tuple[int, ...]
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        # The window spans every channel; the channel stride then has one position.
        return (input_shape[0], *window), (input_shape[0], *stride)

    def slice_features(
        self,
        inputs: torch.Tensor,
        feature_names: list[str] | None,
        grid: tuple[int, int],
        pad_id: int | None = None,
    ) -> SliceFeatures:
        """Images pooled on ``grid``: the mean of each cell and channel."""
        from auditor.explainers.grid import Grid, SliceFeatures

        layout = Grid.for_shape(tuple(inputs.shape[1:]), grid)
        return SliceFeatures(
            layout.pool(inputs), layout.feature_names(), layout.element_features(), layout
        )


def default_patch(input_shape: tuple[int, ...]) -> int:
    """Patch side in pixels when the spec gives none: ``ceil(shorter side / 16)``."""
    return max(1, math.ceil(min(input_shape[-2:]) / PATCHES_PER_SIDE))


IMAGE = register(ImageModality())
