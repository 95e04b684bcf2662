"""What one Ray worker holds: the audit's model, data and explainer engines, built once.

A worker rebuilds the run from the spec text the driver runs (the run folder's copy), its
overrides and the driver's targets, with the same functions the driver uses (load, plan,
precision, ``slice_context``), so a shard's attributions are those the driver would compute:
the same batches, the same per-sample seeds (``auditor.explainers.base.sample_seed``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from auditor.explain import explain_batch
from auditor.explainers.base import Explainer

#: One batch's result: (batch index, first sample position, attributions, per-sample stats).
BatchResult = tuple[int, int, np.ndarray, dict[str, list[float]]]


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
        self.explainers: dict[int, Explainer] = {}

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
