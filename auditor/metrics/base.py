"""Base class of metrics: what they measure, which way is better, what they need.

A metric plugin measures the explanations of one explainer (``scope = "explainer"``),
compares every explainer (``scope = "cross"``), or measures the model (``scope =
"model"``). It returns per-sample values (summarized as mean, std and a 95% interval by
the runner, and stored in the run folder) plus any scalar values and curves the report
shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from auditor.data.base import AuditDataset
from auditor.data.slicing import iter_batches
from auditor.errors import SpecIssue
from auditor.explainers.base import ExplainContext, Explainer, Predictions
from auditor.plugin import Plugin


@dataclass
class SliceAccess:
    """The audited slice, read batch by batch (never held in memory as a whole)."""

    dataset: AuditDataset
    indices: np.ndarray
    batch_size: int

    def __len__(self) -> int:
        return len(self.indices)

    def batches(self, limit: int | None = None) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(positions in the slice, inputs) for the first ``limit`` samples (all by default)."""
        positions = np.arange(len(self.indices) if limit is None else min(limit, len(self.indices)))
        for chunk in iter_batches(positions, self.batch_size):
            yield chunk, self.dataset.get(self.indices[chunk])


@dataclass
class ExplainerRun:
    """One explainer's finished output, and how to run it again (on another model)."""

    id: str
    type: str
    cls: type[Explainer]
    params: BaseModel
    attributions: np.ndarray  # memory-mapped (N, *input_shape) float32; empty for global ones
    stats: dict[str, list[float]] = field(default_factory=dict)
    fidelity: dict[str, float] = field(default_factory=dict)  # global surrogates

    def rebuild(self, model: nn.Module, context: ExplainContext) -> Explainer:
        return self.cls(model, self.params, context)


@dataclass
class MetricContext:
    """What a metric may use. ``explainer`` is None for model-scope metrics."""

    model: nn.Module
    data: SliceAccess
    predictions: Predictions
    context: ExplainContext
    explainer: ExplainerRun | None = None
    explainers: dict[str, ExplainerRun] = field(default_factory=dict)
    log: Callable[[str], None] = print


@dataclass
class MetricOutput:
    """Per-sample values, scalars, curves and a note for the report."""

    per_sample: np.ndarray | None = None
    values: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    matrix: dict[str, Any] | None = None  # cross metrics: {"labels": [...], "values": [[...]]}


class NotApplicable(Exception):
    """Raised by a metric that does not apply to this explainer (recorded, not a failure)."""


class Metric(Plugin):
    """Base of every metric plugin."""

    kind: ClassVar[str] = "metric"
    direction: ClassVar[Literal["higher", "lower"]] = "higher"
    #: Values its mean can take where the method bounds them, e.g. ``(0.0, 1.0)``; a check
    #: outside them can never pass, and ``auditor validate`` says so. None: not bounded.
    value_range: ClassVar[tuple[float, float] | None] = None
    scope: ClassVar[Literal["explainer", "cross", "model"]] = "explainer"
    modalities: ClassVar[frozenset[str]] = frozenset({"image", "tabular", "text", "structured"})
    #: Explainer types it applies to (None: every local explainer).
    explainer_types: ClassVar[frozenset[str] | None] = None
    #: What it needs, for `auditor plugins` and the report.
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: BaseModel) -> None:
        self.params = params

    @classmethod
    def input_issues(
        cls, params: BaseModel, modality: str, input_shape: tuple[int, ...]
    ) -> list[SpecIssue]:
        """Problems of ``params`` with inputs of ``input_shape``, found in planning before
        any explainer runs (as ``Explainer.input_issues``; locs like ``("params", "patch")``)."""
        return []

    def applies_to(self, explainer: ExplainerRun, modality: str) -> bool:
        if modality not in self.modalities or explainer.cls.scope != "local":
            return False
        return self.explainer_types is None or explainer.type in self.explainer_types

    def measure(self, ctx: MetricContext) -> MetricOutput:  # pragma: no cover - abstract
        raise NotImplementedError
