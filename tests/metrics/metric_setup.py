"""Building a MetricContext by hand, as the runner does, for the metric tests.

The explainers run on real digits with the trained digits CNN (``tests/explainers/tiny.py``);
their attributions are written to a ``.npy`` file and opened memory-mapped, as the runner
hands them to metrics.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "explainers"))

from tiny import Linear, digits_batch, digits_cnn, make_explainer

from auditor import registries
from auditor.data.base import TensorDataset
from auditor.explainers.base import ExplainContext, Predictions
from auditor.metrics.base import ExplainerRun, MetricContext, MetricOutput, SliceAccess

__all__ = [
    "Audit",
    "Linear",
    "digits_audit",
    "digits_batch",
    "digits_cnn",
    "make_explainer",
    "measure",
]


class Audit:
    """A model, a slice of data and its predictions, from which explainer runs are built."""

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        labels: np.ndarray,
        folder: Path,
        *,
        modality: str = "image",
        batch_size: int = 32,
        seed: int = 0,
        feature_names: list[str] | None = None,
    ) -> None:
        self.model, self.inputs, self.folder = model, inputs, folder
        with torch.no_grad():
            logits = model(inputs).numpy().astype(np.float32)
        n_classes = logits.shape[1]
        self.dataset = TensorDataset(
            inputs,
            np.asarray(labels, dtype=np.int64),
            modality=modality,  # type: ignore[arg-type]
            class_names=[str(i) for i in range(n_classes)],
            feature_names=feature_names,
        )
        self.predictions = Predictions(
            logits=logits, labels=self.dataset.labels, targets=logits.argmax(axis=1)
        )
        self.context = ExplainContext(
            modality=modality,  # type: ignore[arg-type]
            input_shape=tuple(inputs.shape[1:]),
            seed=seed,
            background=inputs[:64].clone(),
            feature_names=feature_names,
            class_names=self.dataset.class_names,
        )
        self.slice = SliceAccess(self.dataset, np.arange(len(inputs)), batch_size)
        self.runs: dict[str, ExplainerRun] = {}

    def explain(
        self, name: str, params: dict[str, Any] | None = None, *, id: str | None = None
    ) -> ExplainerRun:
        """Run a registered explainer over the slice into ``<folder>/<id>.npy`` (memory-mapped)."""
        key = id or name
        cls = registries.explainers.get(name)
        validated = cls.Params.model_validate(params or {})
        explainer = cls(self.model, validated, self.context)
        targets = torch.as_tensor(self.predictions.targets)
        parts = [
            explainer.explain(x, targets[positions]).numpy()
            for positions, x in self.slice.batches()
        ]
        path = self.folder / f"{key}.npy"
        np.save(path, np.concatenate(parts).astype(np.float32))
        run = ExplainerRun(
            id=key,
            type=name,
            cls=cls,
            params=validated,
            attributions=np.load(path, mmap_mode="r"),
            stats={k: list(v) for k, v in explainer.sample_stats.items()},
        )
        self.runs[key] = run
        return run

    def ctx(self, run: ExplainerRun | None = None) -> MetricContext:
        return MetricContext(
            model=self.model,
            data=self.slice,
            predictions=self.predictions,
            context=self.context,
            explainer=run,
            explainers=dict(self.runs),
            log=lambda _: None,
        )


def measure(metric: str, ctx: MetricContext, **params: Any) -> MetricOutput:
    """Validate ``params`` with the metric's Params and measure, as the runner does."""
    cls = registries.metrics.get(metric)
    return cls(cls.Params.model_validate(params)).measure(ctx)


def digits_audit(folder: Path, n: int = 64, **kwargs: Any) -> Audit:
    inputs, labels = digits_batch(n)
    return Audit(digits_cnn(), inputs, labels.numpy(), folder, **kwargs)
