"""What one Ray worker holds: the audit's model, data and explainer engines, built once.

A worker rebuilds the run from the spec text the driver runs (the run folder's copy), its
overrides and the driver's targets, with the same functions the driver uses (load, plan,
precision, ``slice_context``), so a shard's attributions are those the driver would compute:
the same batches, the same per-sample seeds (``auditor.explainers.base.sample_seed``).
Per-sample metrics (``BatchMetric``) measure their batches here too, from the attribution
rows the driver sends with each shard; their random draws are seeded per sample
(``auditor.metrics.noise``), so a batch's values are those the driver would compute.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from auditor.explain import explain_batch
from auditor.explainers.base import Explainer, Predictions
from auditor.metrics.base import (
    BatchMetric,
    ExplainedBatch,
    ExplainerRun,
    MetricContext,
    PerSample,
    SliceAccess,
)

#: One batch's result: (batch index, first sample position, attributions, per-sample stats).
BatchResult = tuple[int, int, np.ndarray, dict[str, list[float]]]
#: A metric shard's batch as the driver sends it: (batch index, sample positions, the
#: explainer's attributions of those samples).
MetricBatch = tuple[int, np.ndarray, np.ndarray]


class AuditWorker:
    """The model, the data and one explainer engine per job, for shards of the slice."""

    def __init__(
        self,
        spec_text: str,
        spec_path: str,
        overrides: tuple[str, ...],
        indices: np.ndarray,
        targets: np.ndarray,
        threads: int = 1,
    ) -> None:
        from auditor import runner

        torch.set_num_threads(max(1, threads))  # the CPUs the actor reserved
        from auditor.spec.load import apply_overrides, parse_document, validate_document

        doc = parse_document(spec_text, Path(spec_path))
        if overrides:
            doc.data = apply_overrides(doc, overrides)
        validated = validate_document(doc, plan=False)
        spec = validated.spec
        runner.seed_everything(spec.seed)
        #: The run's torch settings, as ``runner.run`` sets them, for this worker's life.
        self.settings = contextlib.ExitStack()
        self.settings.enter_context(runner.deterministic_algorithms())
        loaded = runner.load_model(validated)
        dataset, own = runner.load_data(validated)
        if not np.array_equal(own, indices):
            raise RuntimeError(
                f"this worker's slice of {spec_path} is not the driver's ({len(own)} samples "
                f"against {len(indices)}, or other ones): the worker reads other data (is "
                "the data at the same path on every node?)"
            )
        planned = runner.plan_run(validated, loaded, dataset, own)
        self.device = planned.device
        example = dataset.get(own[:2])
        self.model = runner.with_precision(planned.loaded.module, spec.precision, example)
        self.context = runner.slice_context(spec, planned, self.model)
        self.jobs = planned.jobs
        self.dataset = dataset
        self.indices = own
        self.targets = torch.as_tensor(targets)
        self.batch_size = spec.data.batch_size
        self.explainers: dict[int, Explainer] = {}
        #: Per metric record (``<explainer>.<metric>``): the metric, its context and what
        #: its ``prepare`` built, kept for the record's next shards.
        self.metrics: dict[str, tuple[BatchMetric, MetricContext, object]] = {}

    def ready(self) -> str:
        """Where this worker computes, answered once the constructor finished (the driver
        waits for every worker)."""
        device = self.device
        if device.type == "cuda":
            return f"{device} ({torch.cuda.get_device_name(device)})"
        return str(device)

    def explain(self, job_index: int, batches: list[tuple[int, np.ndarray]]) -> list[BatchResult]:
        """Attributions of the given batches (index, sample positions) by job ``job_index``.

        The job's engine is built on its first shard and kept for the next ones.
        """
        explainer = self.explainers.get(job_index)
        if explainer is None:
            job = self.jobs[job_index]
            explainer = self.explainers[job_index] = job.cls(self.model, job.params, self.context)
        out: list[BatchResult] = []
        for b, positions in batches:
            x = self.dataset.get(self.indices[positions])
            attr, stats = explain_batch(explainer, x, self.targets[positions])
            out.append((b, int(positions[0]), attr, stats))
        return out

    def measure(
        self, key: str, metric: BatchMetric, explainer_id: str, batches: list[MetricBatch]
    ) -> list[tuple[int, PerSample]]:
        """Per-sample arrays of ``metric`` for the given batches of explainer ``explainer_id``.

        The metric's ``prepare`` runs on the record's first shard; its result is kept.
        """
        entry = self.metrics.get(key)
        if entry is None:
            ctx = self.metric_context(explainer_id)
            entry = self.metrics[key] = (metric, ctx, metric.prepare(ctx))
        metric, ctx, prepared = entry
        out: list[tuple[int, PerSample]] = []
        for b, positions, attributions in batches:
            batch = ExplainedBatch(
                positions=positions,
                inputs=self.dataset.get(self.indices[positions]),
                attributions=torch.as_tensor(attributions),
                targets=self.targets[positions].long(),
            )
            out.append((b, metric.measure_batch(ctx, prepared, batch)))
        return out

    def metric_context(self, explainer_id: str) -> MetricContext:
        """What a metric's batches may use here: the model, the context and the explainer's
        job (its attributions come with each batch, not from a file)."""
        job = next((j for j in self.jobs if j.id == explainer_id), None)
        if job is None:
            raise RuntimeError(f"this worker's plan has no explainer '{explainer_id}'")
        run = ExplainerRun(
            id=job.id,
            type=job.entry.type,
            cls=job.cls,
            params=job.params,
            attributions=np.empty((0,), np.float32),
        )
        targets = self.targets.numpy()
        predictions = Predictions(
            logits=np.empty((len(targets), 0), np.float32),
            labels=self.dataset.labels[self.indices],
            targets=targets,
        )
        return MetricContext(
            model=self.model,
            data=SliceAccess(self.dataset, self.indices, self.batch_size),
            predictions=predictions,
            context=self.context,
            explainer=run,
            log=lambda _: None,
        )
