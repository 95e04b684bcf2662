"""Base class of metrics: what they measure, which way is better, what they need.

A metric plugin measures the explanations of one explainer (``scope = "explainer"``),
compares every explainer (``scope = "cross"``), or measures the model (``scope =
"model"``). It returns per-sample values (summarized as mean, std and a 95% interval by
the runner, and stored in the run folder) plus any scalar values and curves the report
shows.

A metric of one explainer that does model work per sample is a ``BatchMetric``: its
``measure_batch`` turns one batch of the slice (with the stored attributions) into
per-sample arrays, and its ``finish`` turns the whole slice's arrays into the output. The
runner runs the batches here or, with ``runner.backend: ray``, as shards on Ray workers,
and calls ``finish`` on the driver, so that summaries are computed from the same arrays in
both cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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
        for chunk in self.positions(limit):
            yield chunk, self.dataset.get(self.indices[chunk])

    def positions(self, limit: int | None = None) -> list[np.ndarray]:
        """The slice positions of each batch ``batches`` reads, in order."""
        n = len(self.indices) if limit is None else min(limit, len(self.indices))
        return list(iter_batches(np.arange(n), self.batch_size))


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


#: A batch's (or the slice's) per-sample arrays of a ``BatchMetric``, by name; every array
#: has one row per sample.
PerSample = dict[str, np.ndarray]


@dataclass
class ExplainedBatch:
    """A batch of the slice with its stored attributions and targets."""

    positions: np.ndarray  # positions in the slice
    inputs: torch.Tensor  # (B, *input_shape)
    attributions: torch.Tensor  # (B, *input_shape), read from the explainer's file
    targets: torch.Tensor  # (B,) int64, the classes the attributions explain


def explained_batches(ctx: MetricContext, limit: int | None) -> Iterator[ExplainedBatch]:
    """The first ``limit`` samples of the slice (all for None) with the explainer's output."""
    run = ctx.explainer
    if run is None:
        raise ValueError("this metric measures one explainer, but the context names none")
    for positions, inputs in ctx.data.batches(limit=limit):
        yield ExplainedBatch(
            positions=positions,
            inputs=inputs,
            attributions=torch.as_tensor(np.array(run.attributions[positions], dtype=np.float32)),
            targets=torch.as_tensor(ctx.predictions.targets[positions], dtype=torch.long),
        )


def concatenated(parts: Iterable[PerSample]) -> PerSample:
    """The batches' per-sample arrays joined in slice order (batches given in that order)."""
    parts = list(parts)
    if not parts:
        return {}
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


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


class BatchMetric(Metric):
    """A metric of one explainer whose per-sample values come batch by batch.

    ``measure_batch`` must depend on nothing but its batch (the inputs, stored attributions,
    targets and slice positions) and what ``prepare`` built, never on ``ctx.data`` or on
    ``ctx.explainer.attributions`` (a Ray worker has neither): so a batch gives the same
    values wherever it runs. Random draws are seeded per sample (``auditor.metrics.noise``),
    so that a sample's value does not depend on the batch or shard it is in. ``finish`` gets
    every measured sample's arrays at once and computes the summaries.
    """

    def samples(self) -> int | None:
        """The first samples of the slice measured (None: all): ``params.samples``."""
        return getattr(self.params, "samples", None)

    def check(self, ctx: MetricContext) -> None:
        """Raise before any batch runs when the metric cannot measure this explainer."""
        if ctx.explainer is None:
            raise ValueError(f"{self.name} measures one explainer; none was given")

    def prepare(self, ctx: MetricContext) -> Any:
        """What every batch needs and is built once (an explainer rebuilt, say)."""
        return None

    def measure_batch(
        self, ctx: MetricContext, prepared: Any, batch: ExplainedBatch
    ) -> PerSample:  # pragma: no cover - abstract
        raise NotImplementedError

    def finish(
        self, ctx: MetricContext, values: PerSample
    ) -> MetricOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def measure(self, ctx: MetricContext) -> MetricOutput:
        """Every batch here, in order, then ``finish``."""
        self.check(ctx)
        return self.finish(ctx, concatenated(self.measure_here(ctx)))

    def measure_here(
        self, ctx: MetricContext, advance: Callable[[], None] | None = None
    ) -> list[PerSample]:
        """Every batch's per-sample arrays, measured in this process, in order
        (``advance`` called after each batch)."""
        prepared = self.prepare(ctx)
        parts = []
        for batch in explained_batches(ctx, self.samples()):
            parts.append(self.measure_batch(ctx, prepared, batch))
            if advance is not None:
                advance()
        return parts
