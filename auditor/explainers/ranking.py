"""Slice-level rankings of local explainers: mean absolute attribution per feature.

A local explainer gives one attribution per input element and sample. Over the slice, a
feature's importance is the mean over samples of its absolute attribution: per column for
tabular data, per pixel (after averaging the absolute value over channels) for images. The
spread is the standard deviation of the same per-sample quantity over the slice.

Shapes: ``attributions`` is ``(N, F)`` for tabular data and ``(N, C, H, W)`` for images; the
ranking is ``(F,)`` or ``(H * W,)`` (row-major pixels, named by ``ranking_names``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from auditor.explainers.grid import tabular_names


def per_sample_magnitude(attributions: np.ndarray, modality: str) -> np.ndarray:
    """``(N, features)`` float64: absolute attribution per feature (images: channel mean)."""
    a = np.abs(np.asarray(attributions, dtype=np.float64))
    if modality == "image":
        if a.ndim != 4:
            raise ValueError(f"image attributions must be (N, C, H, W), got shape {a.shape}")
        return a.mean(axis=1).reshape(len(a), -1)
    if a.ndim != 2:
        raise ValueError(f"tabular attributions must be (N, F), got shape {a.shape}")
    return a


def slice_ranking(
    attributions: np.ndarray, modality: str, feature_names: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(importance, std) per feature: mean and std over the slice of |attribution|.

    For tabular data ``feature_names`` (if given) must have one name per column; images
    ignore it and rank pixels (see ``ranking_names``).
    """
    magnitude = per_sample_magnitude(attributions, modality)
    if len(magnitude) == 0:
        raise ValueError("no attributions to rank: the slice is empty")
    if modality != "image":
        tabular_names(magnitude.shape[1], feature_names)  # the count must match
    return magnitude.mean(axis=0), magnitude.std(axis=0)


def ranking_names(
    modality: str, input_shape: tuple[int, ...], feature_names: list[str] | None = None
) -> list[str]:
    """Names of the ranked features: tabular names (or ``x0, ...``), pixels ``r{row}c{col}``."""
    if modality == "image":
        _, height, width = input_shape
        return [f"r{i}c{j}" for i in range(height) for j in range(width)]
    return tabular_names(int(np.prod(input_shape)), feature_names)


def class_maps(
    attributions: np.ndarray, classes: Iterable[int], modality: str = "image"
) -> dict[int, np.ndarray]:
    """Mean |attribution| map per class: ``{class: (H, W)}`` for images, ``(F,)`` for tabular.

    ``classes`` gives each sample's class (its target, label or prediction, as the caller
    chooses); classes without samples are absent.
    """
    a = np.asarray(attributions)
    classes = np.asarray(list(classes), dtype=np.int64)
    if len(classes) != len(a):
        raise ValueError(f"{len(classes)} classes for {len(a)} attributions")
    magnitude = per_sample_magnitude(a, modality)
    shape = a.shape[2:] if modality == "image" else a.shape[1:]
    return {int(k): magnitude[classes == k].mean(axis=0).reshape(shape) for k in np.unique(classes)}
