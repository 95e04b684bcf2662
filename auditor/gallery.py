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
    """Positions in the slice: misclassified first (if asked), spread over classes (if asked).

    Deterministic: within each group samples keep slice order, classes take turns.
    """
    n = len(predictions.labels)
    count = min(spec.samples, n)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.arange(n)
    if spec.misclassified_first:
        wrong = ~predictions.correct
        order = np.concatenate([order[wrong], order[~wrong]])
    if spec.per_class:
        buckets: dict[int, list[int]] = {}
        for pos in order:
            buckets.setdefault(int(predictions.labels[pos]), []).append(int(pos))
        picked: list[int] = []
        for label in sorted(buckets):
            picked.extend(buckets[label][: spec.per_class])
        # keep the misclassified-first order among the picked ones
        rank = {int(p): i for i, p in enumerate(order)}
        order = np.array(sorted(picked, key=rank.__getitem__), dtype=np.int64)
    return np.asarray(order[:count], dtype=np.int64)


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
