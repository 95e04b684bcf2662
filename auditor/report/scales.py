"""One colour scale per explainer, computed over the whole slice from the memory-mapped file.

Galleries must not normalize each image on its own (that hides how strong an attribution
is compared with the others). Each explainer gets one scale: the 99th percentile of
|attribution| over every pixel (channels averaged, as in the rankings) or feature of every
sample in the slice. Larger values saturate. Attributions that are never negative are shown
as magnitudes (sequential map, ``[0, scale]``), others as signed values (diverging map,
``[-scale, scale]``).

The percentile is exact (numpy's default, linear interpolation between order statistics)
and streamed: one pass over the memory map finds the maximum, a second counts |values| in a
fine histogram to find the bins holding the two order statistics needed, a third collects
just the values in those bins. Memory does not grow with the slice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auditor.report.modalities import view_for

BINS = 1 << 16
CHUNK_VALUES = 4_000_000  # values read per chunk (about 16 MB of float32)


@dataclass(frozen=True)
class ColourScale:
    """How one explainer's attributions are coloured in the report."""

    explainer: str
    signed: bool  # True: diverging [-scale, scale]; False: sequential [0, scale]
    scale: float  # the percentile of |attribution|
    percentile: float
    maximum: float  # largest |attribution| in the slice
    n_values: int
    n_nonfinite: int

    @property
    def low(self) -> float:
        return -self.scale if self.signed else 0.0

    @property
    def high(self) -> float:
        return self.scale

    @property
    def saturated(self) -> float:
        """The fraction of values beyond the scale (shown at the end colour)."""
        return max(0.0, 1.0 - self.percentile / 100.0)


def reduce_channels(block: np.ndarray, modality: str) -> np.ndarray:
    """(B, C, H, W) images -> (B, H, W) with channels averaged; others unchanged
    (the modality's ``reduce``, ``auditor.report.modalities``)."""
    return view_for(modality).reduce(block)


def _chunks(array: np.ndarray, modality: str, keep: np.ndarray | None) -> Iterator[np.ndarray]:
    """The reduced values chunk by chunk; only those where ``keep`` (same shape) is True."""
    per_sample = max(1, int(np.prod(array.shape[1:])))
    rows = max(1, CHUNK_VALUES // per_sample)
    for start in range(0, len(array), rows):
        block = reduce_channels(np.asarray(array[start : start + rows], dtype=np.float64), modality)
        yield block[keep[start : start + rows]] if keep is not None else block.ravel()


def _bins(values: np.ndarray, maximum: float) -> np.ndarray:
    """The histogram bin of each |value| in [0, maximum] (the same rule in every pass)."""
    return np.minimum((values * (BINS / maximum)).astype(np.int64), BINS - 1)


def colour_scale(
    explainer: str,
    path: Path,
    modality: str,
    percentile: float = 99.0,
    keep: np.ndarray | None = None,
) -> ColourScale:
    """The scale of ``attributions/<id>.npy`` (opened with ``mmap_mode="r"``).

    ``keep``: a boolean mask of the reduced values that count (text: real tokens, not pads
    or special tokens); None counts every value.
    """
    array = np.load(path, mmap_mode="r")
    if keep is not None and keep.shape != array.shape:
        raise ValueError(f"{path.name}: mask of shape {keep.shape}, attributions {array.shape}")
    maximum, minimum, n, bad = 0.0, 0.0, 0, 0
    for values in _chunks(array, modality, keep):
        finite = np.isfinite(values)
        bad += int((~finite).sum())
        values = values[finite]
        if values.size:
            maximum = max(maximum, float(np.abs(values).max()))
            minimum = min(minimum, float(values.min()))
            n += values.size
    signed = minimum < 0
    if maximum == 0.0 or n == 0:
        return ColourScale(explainer, signed, 1.0, percentile, maximum, n, bad)
    counts = np.zeros(BINS, dtype=np.int64)
    for values in _chunks(array, modality, keep):
        values = np.abs(values[np.isfinite(values)])
        counts += np.bincount(_bins(values, maximum), minlength=BINS)
    # numpy's linear method: the value at fractional rank q * (n - 1) of the sorted values
    rank = percentile / 100.0 * (n - 1)
    low, high = int(np.floor(rank)), int(np.ceil(rank))
    cumulative = np.cumsum(counts)
    wanted = sorted({int(np.searchsorted(cumulative, r, side="right")) for r in (low, high)})
    inside: dict[int, list[np.ndarray]] = {b: [] for b in wanted}
    for values in _chunks(array, modality, keep):
        values = np.abs(values[np.isfinite(values)])
        bins = _bins(values, maximum)
        for b in wanted:
            inside[b].append(values[bins == b])

    def order_statistic(r: int) -> float:
        b = int(np.searchsorted(cumulative, r, side="right"))
        before = int(cumulative[b - 1]) if b > 0 else 0
        return float(np.sort(np.concatenate(inside[b]))[r - before])

    v_low, v_high = order_statistic(low), order_statistic(high)
    scale = v_low + (rank - low) * (v_high - v_low)
    return ColourScale(
        explainer, signed, scale if scale > 0 else maximum, percentile, maximum, n, bad
    )
