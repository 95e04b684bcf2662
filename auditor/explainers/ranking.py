"""Slice-level rankings of local explainers: mean absolute attribution per feature.

A local explainer gives one attribution per input element and sample. Over the slice, a
feature's importance is the mean over samples of its absolute attribution: per column for
tabular data; for images per pixel (after averaging the absolute value over channels), or per
region once an image is larger than 32x32 (``auditor.explainers.regions``: the mean of its
pixels). The spread is the standard deviation of the same per-sample quantity over the slice.

Shapes: ``attributions`` is ``(N, F)`` for tabular data and ``(N, C, H, W)`` for images; the
ranking is ``(F,)``, ``(H * W,)`` (row-major pixels) or ``(regions,)``, named by
``ranking_names``. Ties (equal importance) are found by ``tie_groups``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from auditor.explainers.names import tabular_names
from auditor.modalities import modality_of

#: Importances this close, relative to the largest, are a tie (float32 storage rounds). No
#: absolute tolerance: a random-init network's attributions can all be around 1e-12.
TIE_RTOL = 1e-6


def per_sample_magnitude(attributions: np.ndarray, modality: str) -> np.ndarray:
    """``(N, pixels or columns)`` float64: absolute attribution (images: channel mean)."""
    return modality_of(modality).magnitude(attributions)


def slice_ranking(
    attributions: np.ndarray, modality: str, feature_names: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(importance, std) per feature: mean and std over the slice of |attribution|.

    For tabular data ``feature_names`` (if given) must have one name per column; images
    ignore it and rank pixels or regions (see ``ranking_names``).
    """
    magnitude = per_sample_magnitude(attributions, modality)
    if len(magnitude) == 0:
        raise ValueError("no attributions to rank: the slice is empty")
    kind = modality_of(modality)
    if kind.fixed_features:
        tabular_names(magnitude.shape[1], feature_names)  # the count must match
    magnitude = kind.pool_units(magnitude, tuple(np.shape(attributions)[1:]))
    return magnitude.mean(axis=0), magnitude.std(axis=0)


def ranking_names(
    modality: str, input_shape: tuple[int, ...], feature_names: list[str] | None = None
) -> list[str]:
    """Names of the ranked features: tabular names (or ``x0, ...``), pixels ``r{row}c{col}``,
    or regions ``rows 0-7, cols 8-15`` of images larger than 32x32."""
    kind = modality_of(modality)
    if kind.fixed_features:
        return tabular_names(int(np.prod(input_shape)), feature_names)
    return kind.ranked_features(tuple(input_shape), feature_names) or []


def tie_groups(importance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ranking order (by |importance|, stable) and, per position in it, the position
    where its tie starts: ``starts[i] == i`` when position ``i`` ties with no one before it.

    Values within ``TIE_RTOL`` times the largest |importance| of each other are a tie.
    """
    values = np.abs(np.nan_to_num(np.asarray(importance, dtype=np.float64), nan=0.0))
    order = np.argsort(-values, kind="stable")
    ranked = values[order]
    tolerance = TIE_RTOL * float(ranked[0]) if ranked.size else 0.0
    starts = np.arange(ranked.size)
    for i in range(1, ranked.size):
        if ranked[starts[i - 1]] - ranked[i] <= tolerance:
            starts[i] = starts[i - 1]
    return order, starts


def tied_top(importance: np.ndarray, k: int) -> int:
    """How many features tie with the largest importance when that tie makes a top ``k``
    arbitrary (it reaches past ``k``, or covers every feature of two or more); else 0."""
    values = np.asarray(importance)
    if values.size < 2:
        return 0
    _, starts = tie_groups(values)
    tied = int(np.count_nonzero(starts == 0))
    return tied if tied > min(k, values.size) or tied == values.size else 0


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
    shape = modality_of(modality).unit_shape(tuple(a.shape[1:]))
    return {int(k): magnitude[classes == k].mean(axis=0).reshape(shape) for k in np.unique(classes)}
