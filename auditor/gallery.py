"""Which samples the report's gallery shows, stored in the run folder as ``gallery.npz``.

The report is rendered from the run folder alone, so the runner keeps the chosen inputs
(a few dozen samples at most) next to their labels, predictions and probabilities.
"""

from __future__ import annotations

import io

import numpy as np

from auditor.data.base import AuditDataset
from auditor.explainers.base import Predictions
from auditor.run_folder import RunFolder
from auditor.spec.model import GallerySpec


def choose(spec: GallerySpec, predictions: Predictions, seed: int) -> np.ndarray:
    """Positions in the slice: misclassified first (if asked), spread over the classes.

    Classes (true labels) take turns: the first sample of each class, then the second of
    each, and so on, so that a gallery of 12 on a slice sorted by class does not show one
    class only. With ``misclassified_first`` the misclassified samples come first (taking
    turns among themselves), then the correct ones. ``per_class`` caps the samples of one
    class; the gallery then holds fewer than ``samples`` when the classes run out.
    Deterministic: within a class samples keep slice order (``seed`` is not needed).
    """
    n = len(predictions.labels)
    count = min(spec.samples, n)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    labels = np.asarray(predictions.labels)
    if spec.misclassified_first:
        wrong = ~np.asarray(predictions.correct, dtype=bool)
        groups = [np.flatnonzero(wrong), np.flatnonzero(~wrong)]
    else:
        groups = [np.arange(n)]
    taken: dict[int, int] = {}
    picked: list[int] = []
    for group in groups:
        for pos in _round_robin(group, labels[group]):
            label = int(labels[pos])
            if spec.per_class is not None and taken.get(label, 0) >= spec.per_class:
                continue
            taken[label] = taken.get(label, 0) + 1
            picked.append(pos)
            if len(picked) == count:
                return np.asarray(picked, dtype=np.int64)
    return np.asarray(picked, dtype=np.int64)


def _round_robin(positions: np.ndarray, labels: np.ndarray) -> list[int]:
    """``positions`` reordered so that classes take turns (in class order), each in order."""
    by_class = [positions[labels == k] for k in np.unique(labels)]
    longest = max((len(b) for b in by_class), default=0)
    return [int(b[i]) for i in range(longest) for b in by_class if i < len(b)]


def save(
    folder: RunFolder,
    positions: np.ndarray,
    dataset: AuditDataset,
    indices: np.ndarray,
    predictions: Predictions,
) -> None:
    """Write ``gallery.npz``: positions, dataset indices, inputs, labels, predictions, and
    ``values`` (the inputs in the data's own units) where the source standardized them."""
    probs = predictions.probabilities
    inputs = (
        dataset.get(indices[positions]).numpy()
        if len(positions)
        else np.zeros((0, *dataset.input_shape), np.float32)
    )
    raw = dataset.raw_values(indices[positions]) if len(positions) else None
    extra = {} if raw is None else {"values": raw.reshape(inputs.shape).astype(np.float64)}
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        **extra,
        positions=positions,
        indices=indices[positions],
        inputs=inputs.astype(np.float32),
        labels=predictions.labels[positions],
        predicted=predictions.predicted[positions],
        probability=probs[positions, predictions.predicted[positions]].astype(np.float32),
        targets=predictions.targets[positions],
    )
    folder.write_bytes("gallery.npz", buffer.getvalue())
