"""Predictions: one pass over the slice, shared by every later stage."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from torch import nn

from auditor.data.base import AuditDataset
from auditor.data.slicing import iter_batches
from auditor.errors import SpecError
from auditor.explainers.base import Predictions
from auditor.hashing import sha256_array
from auditor.progress import Reporter
from auditor.results import PredictionSummary
from auditor.suggest import did_you_mean


def predict(
    model: nn.Module,
    dataset: AuditDataset,
    indices: np.ndarray,
    batch_size: int,
    reporter: Reporter,
) -> tuple[np.ndarray, str]:
    """Logits ``(N, K)`` float32 for the slice and the sha256 of the inputs fed to the model."""
    digest = hashlib.sha256()
    chunks = []
    batches = list(iter_batches(indices, batch_size))
    with reporter.task("predict", len(batches)) as task, torch.no_grad():
        for idx in batches:
            x = dataset.get(idx)
            sha256_array(x.numpy(), digest)
            out = model(x)
            if out.dim() != 2:
                raise SpecError.at(
                    ("model",),
                    f"the model returns shape {list(out.shape)}; a classifier returning "
                    "(batch, classes) logits is expected",
                )
            chunks.append(out.detach().to(torch.float32).cpu().numpy())
            task.advance()
    return np.concatenate(chunks), digest.hexdigest()


def resolve_targets(
    targets: Any, logits: np.ndarray, labels: np.ndarray, class_names: list[str]
) -> np.ndarray:
    """The class each explanation explains: predicted, label, a class index or a name."""
    n_classes = logits.shape[1]
    if targets == "predicted":
        return logits.argmax(axis=1).astype(np.int64)
    if targets == "label":
        return labels.astype(np.int64)
    if isinstance(targets, int):
        if targets >= n_classes:
            raise SpecError.at(
                ("targets",),
                f"class index {targets} is out of range: the model has {n_classes} outputs",
            )
        return np.full(len(labels), targets, dtype=np.int64)
    if targets in class_names:
        return np.full(len(labels), class_names.index(targets), dtype=np.int64)
    raise SpecError.at(
        ("targets",),
        f"unknown class '{targets}'.{did_you_mean(str(targets), class_names)} "
        f"Classes: {', '.join(class_names[:30])}",
    )


def summarize_predictions(
    predictions: Predictions, class_names: list[str], targets_spec: Any
) -> PredictionSummary:
    """Accuracy, per-class accuracy and the confusion matrix on the slice."""
    n_classes = max(len(class_names), predictions.logits.shape[1])
    names = class_names + [str(i) for i in range(len(class_names), n_classes)]
    predicted = predictions.predicted
    labels = predictions.labels
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class: dict[str, float | None] = {}
    for k, name in enumerate(names[: len(class_names)]):
        mask = labels == k
        per_class[name] = float((predicted[mask] == k).mean()) if mask.any() else None
    finite = bool(np.isfinite(predictions.logits).all())
    probs = predictions.probabilities
    return PredictionSummary(
        n=len(labels),
        accuracy=float(predictions.correct.mean()) if len(labels) else float("nan"),
        per_class_accuracy=per_class,
        confusion=confusion.tolist(),
        mean_probability=float(probs.max(axis=1).mean()) if finite else None,
        targets=str(targets_spec),
        finite=finite,
    )
