"""Measure explanation quality: run the spec's metrics over the finished explanations.

Per-sample metrics (``BatchMetric``) run batch by batch, here or, with ``runner.backend:
ray``, as shards on Ray workers (``auditor.scale.ray_shards``); either way ``finish`` turns
the slice's per-sample arrays into the record here. Model-scope and cross metrics, and the
other metrics of one explainer, run here on the whole slice.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel

from auditor import registries
from auditor.explainers.base import ExplainContext, Predictions
from auditor.metrics.base import (
    BatchMetric,
    ExplainerRun,
    Metric,
    MetricContext,
    MetricOutput,
    NotApplicable,
    PerSample,
    SliceAccess,
    concatenated,
)
from auditor.progress import Reporter, Task
from auditor.results import ExplainerResult
from auditor.run_folder import RunFolder, atomic_save_npy
from auditor.spec.model import AuditSpec, MetricCheck
from auditor.stats import summarize


@dataclass
class MetricJob:
    key: str
    type: str
    params: BaseModel
    explainers: list[str] | None  # None: every applicable explainer
    implicit: bool = False


def metric_jobs(spec: AuditSpec, params: dict[str, BaseModel]) -> list[MetricJob]:
    """The spec's metrics, plus metrics that checks name without listing them.

    ``checks: [{metric: integrated_gradients.completeness_error, max: 0.01}]`` runs the
    ``completeness_error`` metric for that explainer with default params.
    """
    jobs = [MetricJob(m.key, m.type, params[m.key], m.explainers) for m in spec.metrics]
    known = {j.key for j in jobs}
    implicit: dict[str, list[str]] = {}
    for check in spec.checks:
        if not isinstance(check, MetricCheck):
            continue
        owner, _, name = check.metric.partition(".")
        if name in known or name not in registries.metrics:
            continue
        cls = registries.metrics.get(name)
        targets = implicit.setdefault(name, [])
        if cls.scope == "explainer" and owner != "model" and owner not in targets:
            targets.append(owner)
    for name, targets in implicit.items():
        cls = registries.metrics.get(name)
        jobs.append(MetricJob(name, name, cls.Params(), targets or None, implicit=True))
    return jobs


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: undefined values (e.g. correlations of constant maps) become null."""
    value = float(value)
    return value if np.isfinite(value) else None


def _record(output: MetricOutput, metric: Metric) -> dict[str, Any]:
    record: dict[str, Any] = {"direction": metric.direction, "status": "ok"}
    if output.per_sample is not None:
        record.update(summarize(output.per_sample).model_dump())
    record["values"] = {k: finite_or_none(v) for k, v in output.values.items()}
    if output.curves:
        record["curves"] = output.curves
    if output.note:
        record["note"] = output.note
    if output.matrix is not None:
        record["matrix"] = output.matrix
    return record


class MetricShards(Protocol):
    """Runs a per-sample metric's batches elsewhere (``auditor.scale.ray_shards``)."""

    def measure(
        self,
        key: str,
        metric: BatchMetric,
        run: ExplainerRun,
        batches: list[tuple[int, np.ndarray]],
        task: Task,
    ) -> list[PerSample]: ...

    def record(self, key: str) -> dict[str, Any]: ...


class MeasureStage:
    """Runs metric jobs and writes their per-sample values to ``metrics/``."""

    def __init__(
        self,
        *,
        model: Any,
        data: SliceAccess,
        predictions: Predictions,
        context: ExplainContext,
        folder: RunFolder,
        reporter: Reporter,
        explained: dict[str, ExplainerResult],
        runs: dict[str, ExplainerRun],
        shards: MetricShards | None = None,
    ) -> None:
        self.model = model
        self.data = data
        self.predictions = predictions
        self.context = context
        self.folder = folder
        self.reporter = reporter
        self.explained = explained
        self.runs = runs
        #: Where per-sample metrics run their batches: None for this process.
        self.shards = shards
        self.model_metrics: dict[str, Any] = {}
        self.cross_metrics: dict[str, Any] = {}
        self.failed = False

    def ctx(self, explainer: ExplainerRun | None) -> MetricContext:
        return MetricContext(
            model=self.model,
            data=self.data,
            predictions=self.predictions,
            context=self.context,
            explainer=explainer,
            explainers={k: r for k, r in self.runs.items() if r.cls.scope == "local"},
            log=self.reporter.log,
        )

    def run(self, job: MetricJob) -> None:
        cls = registries.metrics.get(job.type)
        metric = cls(job.params)
        if cls.scope == "model":
            self.model_metrics[job.key] = self._one(metric, job, None)
        elif cls.scope == "cross":
            self.cross_metrics[job.key] = self._one(metric, job, None)
        else:
            for run in self.runs.values():
                if job.explainers is not None and run.id not in job.explainers:
                    continue
                if not metric.applies_to(run, self.context.modality):
                    if job.explainers is not None:
                        self.explained[run.id].metrics[job.key] = {
                            "status": "not applicable",
                            "note": f"{job.type} does not apply to {run.type}",
                        }
                    continue
                self.explained[run.id].metrics[job.key] = self._one(metric, job, run)

    def _one(self, metric: Metric, job: MetricJob, run: ExplainerRun | None) -> dict[str, Any]:
        label = f"{job.key}" + (f" of {run.id}" if run else "")
        name = f"{run.id}.{job.key}" if run else job.key
        shards = self.shards if isinstance(metric, BatchMetric) and run is not None else None
        start = time.perf_counter()
        self.reporter.log(f"measure {label} ...")
        try:
            output = self._measure(metric, run, name, label)
        except NotApplicable as exc:
            return {"status": "not applicable", "note": str(exc)}
        except Exception as exc:  # isolation, as for explainers
            self.failed = True
            self.reporter.log(f"measure {label}: FAILED: {exc}")
            failed: dict[str, Any] = {
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
            if shards is not None:
                failed["ray"] = shards.record(name)
            return failed
        record = _record(output, metric)
        record["seconds"] = round(time.perf_counter() - start, 4)
        if shards is not None:  # where its batches ran: workers, shards, retries
            record["ray"] = shards.record(name)
        if output.per_sample is not None:
            path = self.folder.file(f"metrics/{name}.npy")
            atomic_save_npy(path, np.asarray(output.per_sample, dtype=np.float32))
            record["file"] = str(path.relative_to(self.folder.path))
        return record

    def _measure(
        self, metric: Metric, run: ExplainerRun | None, name: str, label: str
    ) -> MetricOutput:
        """A per-sample metric batch by batch (on the shards when there are), with
        progress; any other metric in one call."""
        ctx = self.ctx(run)
        if not isinstance(metric, BatchMetric) or run is None:
            return metric.measure(ctx)
        metric.check(ctx)
        batches = list(enumerate(self.data.positions(metric.samples())))
        with self.reporter.task(f"measure {label}", len(batches)) as task:
            if self.shards is not None:
                parts = self.shards.measure(name, metric, run, batches, task)
            else:
                parts = metric.measure_here(ctx, task.advance)
        return metric.finish(ctx, concatenated(parts))


def explainer_runs(
    explained: dict[str, ExplainerResult],
    jobs: list,
    folder: RunFolder,
) -> dict[str, ExplainerRun]:
    """Finished local explainers with their attributions opened read-only."""
    import json

    runs = {}
    for job in jobs:
        result = explained.get(job.id)
        if result is None or result.status != "ok":
            continue
        if job.cls.scope != "local":
            runs[job.id] = ExplainerRun(
                id=job.id,
                type=job.entry.type,
                cls=job.cls,
                params=job.params,
                attributions=np.empty((0,), np.float32),
                fidelity={k: v for k, v in result.fidelity.items() if v is not None},
            )
            continue
        path = folder.path / (result.attribution_file or "")
        stats_path = folder.file(f"attributions/{job.id}.stats.json")
        stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
        runs[job.id] = ExplainerRun(
            id=job.id,
            type=job.entry.type,
            cls=job.cls,
            params=job.params,
            attributions=np.load(path, mmap_mode="r"),
            stats=stats,
        )
    return runs
