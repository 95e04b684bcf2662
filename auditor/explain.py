"""Run every explainer: local ones batch by batch into memory-mapped files, global ones on
the whole slice. An explainer that raises is recorded as failed; the others still run."""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from auditor import registries
from auditor.data.base import AuditDataset
from auditor.data.slicing import iter_batches
from auditor.errors import SpecError, SpecIssue
from auditor.explainers.base import ExplainContext, Explainer, Predictions
from auditor.explainers.gradients import SharedGradients
from auditor.hashing import sha256_file
from auditor.modalities import modality_of
from auditor.modalities.text import rank_tokens
from auditor.planning import plan_issues
from auditor.progress import Reporter, Task
from auditor.results import ExplainerResult, RankedFeature
from auditor.run_folder import AttributionWriter, RunFolder, atomic_save_npy, copy_file
from auditor.spec.model import AuditSpec, ExplainerEntry
from auditor.stats import summarize

RANKING_KEEP = 100  # features kept in results.json per explainer; the full ranking is in rankings/


@dataclass
class ExplainJob:
    """One explainer entry of the spec, ready to run."""

    index: int
    entry: ExplainerEntry
    params: BaseModel
    cls: type[Explainer]

    @property
    def id(self) -> str:
        return self.entry.key


def plan(
    spec: AuditSpec,
    explainer_params: dict[str, BaseModel],
    metric_params: dict[str, BaseModel],
    model: nn.Module,
    dataset: AuditDataset,
    *,
    issues: list[SpecIssue] | None = None,
    features: list[str] | None = None,
) -> list[ExplainJob]:
    """Explainer jobs, after planning found no problem with this model and data.

    Every problem ``auditor.planning.plan_issues`` finds (modality, shape-dependent params,
    layer names, TorchScript, feature names in checks) is raised at once as one SpecError.
    """
    issues = list(issues or []) + plan_issues(
        spec,
        explainer_params,
        metric_params,
        modality=dataset.modality,
        input_shape=tuple(dataset.input_shape),
        feature_names=dataset.feature_names if features is None else features,
        model=model,
    )
    if issues:
        raise SpecError(issues)
    return [
        ExplainJob(i, entry, explainer_params[entry.key], registries.explainers.get(entry.type))
        for i, entry in enumerate(spec.explainers)
    ]


def cache_key(job: ExplainJob, inputs_key: str) -> str:
    """What an explainer's output depends on: its type, params and the run's inputs."""
    payload = {
        "type": job.entry.type,
        "params": job.params.model_dump(mode="json"),
        "inputs": inputs_key,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def feature_names(dataset: AuditDataset, vocab: list[str] | None = None) -> list[str]:
    """Names of the features a local ranking is over: columns, pixels ``r{row}c{col}``, or
    regions ``rows 0-7, cols 8-15`` of images larger than 32x32 (``ranking_names``); for
    text the vocabulary (``vocab``)."""
    if vocab is not None:
        return list(vocab)
    kind = modality_of(dataset.modality)
    return kind.ranked_features(tuple(dataset.input_shape), dataset.feature_names) or []


def _per_feature(attr: np.ndarray, modality: str, *, magnitude: bool) -> np.ndarray:
    """(B, *shape) -> (B, F): tabular columns, or pixels with channels averaged.

    With ``magnitude`` the channels' absolute values are averaged, so that opposite signs
    in different channels do not cancel (as in ``auditor.explainers.ranking``).
    """
    kind = modality_of(modality)
    return kind.signed(np.abs(attr) if magnitude else attr)


@dataclass(frozen=True)
class SliceRanking:
    """A local explainer's ranking over the slice, and the maps the report draws."""

    mean: np.ndarray  # (F,) mean |attribution| per ranked feature (column, pixel or region)
    std: np.ndarray  # (F,) its standard deviation over the slice
    class_maps: np.ndarray  # (classes, columns or pixels) mean signed attribution per target
    pixel_mean: np.ndarray | None  # (H * W,) mean |attribution| per pixel, when F is regions


def rank_attributions(
    path: Path, modality: str, names: list[str], targets: np.ndarray, n_classes: int, chunk: int
) -> SliceRanking:
    """Mean |attribution| per feature, its std, and per-class mean signed maps, read in chunks.

    Images larger than 32x32 are ranked by regions (``auditor.explainers.regions``): a
    sample's value for a region is the mean of its pixels' channel-averaged |attribution|.
    """
    array = np.load(path, mmap_mode="r")
    kind = modality_of(modality)
    shape = tuple(array.shape[1:])
    regions = kind.ranks_regions(shape)
    width = int(np.prod(kind.unit_shape(shape)))
    total = np.zeros(len(names))
    total_sq = np.zeros(len(names))
    pixel_total = np.zeros(width)
    class_sum = np.zeros((n_classes, width))
    class_n = np.zeros(n_classes)
    for start in range(0, len(array), chunk):
        raw = np.asarray(array[start : start + chunk], dtype=np.float64)
        pixels = _per_feature(raw, modality, magnitude=True)
        block = kind.pool_units(pixels, shape) if regions else pixels
        t = targets[start : start + chunk]
        total += block.sum(axis=0)
        total_sq += (block**2).sum(axis=0)
        pixel_total += pixels.sum(axis=0)
        np.add.at(class_sum, t, _per_feature(raw, modality, magnitude=False))
        np.add.at(class_n, t, 1)
    n = max(len(array), 1)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    class_maps = class_sum / np.maximum(class_n, 1)[:, None]
    return SliceRanking(mean, std, class_maps, pixel_total / n if regions else None)


def top_features(
    importance: np.ndarray, spread: np.ndarray | None, names: list[str]
) -> list[RankedFeature]:
    order = np.argsort(-np.abs(importance), kind="stable")[:RANKING_KEEP]
    return [
        RankedFeature(
            feature=names[i],
            importance=float(importance[i]),
            spread=None if spread is None else float(spread[i]),
        )
        for i in order
    ]


def explain_batch(
    explainer: Explainer, inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[np.ndarray, dict[str, list[float]]]:
    """One batch's attributions and the per-sample diagnostics recorded while computing them."""
    before = {k: len(v) for k, v in explainer.sample_stats.items()}
    attr = explainer.explain(inputs, targets)
    new = {k: v[before.get(k, 0) :] for k, v in explainer.sample_stats.items()}
    return attr.numpy(), new


class ShardRunner(Protocol):
    """Runs a local explainer's batches elsewhere (``auditor.scale.ray_shards``)."""

    def explain(
        self,
        job: ExplainJob,
        batches: list[tuple[int, np.ndarray]],
        writer: AttributionWriter,
        task: Task,
    ) -> None: ...

    def close(self) -> None: ...


class ExplainStage:
    """Runs explainer jobs for one run folder."""

    def __init__(
        self,
        *,
        model: nn.Module,
        dataset: AuditDataset,
        indices: np.ndarray,
        predictions: Predictions,
        context: ExplainContext,
        folder: RunFolder,
        batch_size: int,
        reporter: Reporter,
        inputs_key: str,
        resume: bool = False,
        reuse: RunFolder | None = None,
        inputs: Any = None,
        shards: ShardRunner | None = None,
    ) -> None:
        self.model = model
        self.dataset = dataset
        self.indices = indices
        self.predictions = predictions
        self.context = context
        self.folder = folder
        self.batch_size = batch_size
        self.reporter = reporter
        self.inputs_key = inputs_key
        self.resume = resume
        self.previous = self._previous_results(reuse)
        #: What the modality prepared (text: ``TextInputs``; rankings are over tokens).
        self.inputs = inputs
        #: Where local explainers run their batches: None for this process.
        self.shards = shards
        self.names = feature_names(dataset, None if inputs is None else inputs.vocab)

    @staticmethod
    def _previous_results(reuse: RunFolder | None) -> dict[str, tuple[RunFolder, dict]]:
        if reuse is None:
            return {}
        try:
            data = reuse.read_json("results.json")
        except FileNotFoundError:
            return {}
        return {
            r["cache_key"]: (reuse, r)
            for r in data.get("explainers", {}).values()
            if r.get("status") == "ok" and r.get("cache_key")
        }

    def share_gradients(self, jobs: list[ExplainJob]) -> None:
        """Compute the input gradient once per batch for the jobs that read it (two or more)."""
        readers = sum(1 for job in jobs if job.cls.reads_input_gradient)
        if readers > 1:
            self.context = replace(self.context, gradients=SharedGradients(self.model, readers))

    def run(self, job: ExplainJob) -> ExplainerResult:
        try:
            return self._run(job)
        finally:
            if job.cls.reads_input_gradient and self.context.gradients is not None:
                self.context.gradients.reader_done()

    def _run(self, job: ExplainJob) -> ExplainerResult:
        key = cache_key(job, self.inputs_key)
        start = time.perf_counter()
        base = {"id": job.id, "type": job.entry.type, "scope": job.cls.scope, "cache_key": key}
        try:
            if job.cls.scope == "global":
                result = self._run_global(job)
            else:
                result = self._run_local(job, key)
        except Exception as exc:  # isolation: one explainer's failure must not stop the run
            return ExplainerResult(
                **base,
                status="failed",
                seconds=time.perf_counter() - start,
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(),
            )
        seconds = time.perf_counter() - start
        if result.reused is None:
            result.seconds = seconds
            result.seconds_per_sample = seconds / max(len(self.indices), 1)
        result.cache_key = key
        return result

    # -- local ----------------------------------------------------------------------------
    def _run_local(self, job: ExplainJob, key: str) -> ExplainerResult:
        final = self.folder.attribution_path(job.id)
        shape = (len(self.indices), *self.dataset.input_shape)
        reused = None
        stats: dict[str, list[float]] = {}
        if key in self.previous and self._copy_previous(job, key, final):
            reused = str(self.previous[key][0].path)
            stats = self._finished_stats(job.id) or {}
        elif self.resume and final.exists() and self._finished_stats(job.id) is not None:
            stats = self._finished_stats(job.id) or {}
        else:
            stats = self._compute_local(job, final, shape)
        return self._local_result(job, final, stats, reused)

    def _compute_local(
        self, job: ExplainJob, final: Path, shape: tuple[int, ...]
    ) -> dict[str, list[float]]:
        writer = AttributionWriter(final, shape, resume=self.resume)
        batches = list(iter_batches(np.arange(len(self.indices)), self.batch_size))
        targets = torch.as_tensor(self.predictions.targets)
        try:
            done = writer.done_batches  # a resumed run's: no time of this run went into them
            with self.reporter.task(f"explain {job.id}", len(batches), done=done) as task:
                written = writer.done
                todo = [(b, p) for b, p in enumerate(batches) if b not in written]
                if self.shards is not None:
                    self.shards.explain(job, todo, writer, task)
                else:
                    explainer = job.cls(self.model, job.params, self.context)
                    for b, positions in todo:
                        x = self.dataset.get(self.indices[positions])
                        attr, new = explain_batch(explainer, x, targets[positions])
                        writer.write(b, int(positions[0]), attr, new)
                        task.advance()
        except BaseException:
            writer.abandon()
            raise
        stats = writer.stats
        self.folder.write_json(f"attributions/{job.id}.stats.json", stats)
        writer.finish()  # last: a finished .npy always has its stats beside it
        return stats

    def _finished_stats(self, explainer_id: str) -> dict[str, list[float]] | None:
        path = self.folder.file(f"attributions/{explainer_id}.stats.json")
        return json.loads(path.read_text()) if path.exists() else None

    def _copy_previous(self, job: ExplainJob, key: str, final: Path) -> bool:
        folder, record = self.previous[key]
        name = record.get("attribution_file")
        if not isinstance(name, str) or not name:
            return False
        try:  # results.json is data: a tampered one must not copy from outside its folder
            source = folder.file(name)
            stats_file = folder.file(str(Path(name).with_suffix(".stats.json")))
        except ValueError:
            self.reporter.log(
                f"explain {job.id}: not reused: {folder.path / 'results.json'} names an "
                f"attribution file outside its run folder ({name!r}); computing it"
            )
            return False
        if not source.is_file() or sha256_file(source) != record.get("attribution_sha256"):
            return False
        copy_file(source, final)
        if stats_file.is_file():
            copy_file(stats_file, self.folder.file(f"attributions/{job.id}.stats.json"))
        self.reporter.log(f"explain {job.id}: reused from {folder.path}")
        return True

    def _local_result(
        self, job: ExplainJob, final: Path, stats: dict[str, list[float]], reused: str | None
    ) -> ExplainerResult:
        if self.inputs is not None:
            return self._token_result(job, final, stats, reused)
        n_classes = self.predictions.logits.shape[1]
        ranked = rank_attributions(
            final, self.dataset.modality, self.names, self.predictions.targets, n_classes, 256
        )
        mean, std = ranked.mean, ranked.std
        atomic_save_npy(
            self.folder.file(f"rankings/{job.id}.npy"), np.stack([mean, std]).astype(np.float32)
        )
        atomic_save_npy(
            self.folder.file(f"rankings/{job.id}.classmaps.npy"),
            ranked.class_maps.astype(np.float32),
        )
        if ranked.pixel_mean is not None:  # regions are ranked; the report draws pixels
            atomic_save_npy(
                self.folder.file(f"rankings/{job.id}.pixels.npy"),
                ranked.pixel_mean.astype(np.float32),
            )
        return self._ok(job, final, stats, reused, top_features(mean, std, self.names))

    def _ok(
        self,
        job: ExplainJob,
        final: Path,
        stats: dict[str, list[float]],
        reused: str | None,
        ranking: list[RankedFeature],
    ) -> ExplainerResult:
        """A finished local explainer's result record."""
        return ExplainerResult(
            id=job.id,
            type=job.entry.type,
            scope="local",
            status="ok",
            reused=reused,
            attribution_file=str(final.relative_to(self.folder.path)),
            attribution_sha256=sha256_file(final),
            ranking=ranking,
            stats={k: summarize(v) for k, v in stats.items() if v},
        )

    @cached_property
    def slice_ids(self) -> np.ndarray:
        """The slice's token ids (text), read once for every explainer's token ranking."""
        return np.concatenate(
            [
                self.dataset.get(self.indices[p]).numpy()
                for p in iter_batches(np.arange(len(self.indices)), 4096)
            ]
        )

    def _token_result(
        self, job: ExplainJob, final: Path, stats: dict[str, list[float]], reused: str | None
    ) -> ExplainerResult:
        """A text explainer's result: ranked over the vocabulary by shrunk mean |attribution|,
        with the top tokens overall and per class in ``rankings/<id>.tokens.json``."""
        score, mean, tables = rank_tokens(
            final,
            self.slice_ids,
            self.predictions.targets,
            self.inputs.vocab,
            self.dataset.class_names,
            self.inputs.pad_id,
        )
        atomic_save_npy(
            self.folder.file(f"rankings/{job.id}.npy"), np.stack([score, mean]).astype(np.float32)
        )
        self.folder.write_json(f"rankings/{job.id}.tokens.json", tables)
        return self._ok(job, final, stats, reused, top_features(score, None, self.names))

    # -- global ---------------------------------------------------------------------------
    def _run_global(self, job: ExplainJob) -> ExplainerResult:
        explainer = job.cls(self.model, job.params, self.context)
        with self.reporter.task(f"explain {job.id}", 1) as task:
            inputs = torch.cat(
                [
                    self.dataset.get(self.indices[p])
                    for p in iter_batches(np.arange(len(self.indices)), self.batch_size)
                ]
            )
            explanation = explainer.explain_global(inputs, self.predictions)
            task.advance()
        importance = np.asarray(explanation.importance, dtype=np.float64)
        spread = None if explanation.spread is None else np.asarray(explanation.spread)
        atomic_save_npy(
            self.folder.file(f"rankings/{job.id}.npy"),
            np.stack(
                [importance, spread if spread is not None else np.zeros_like(importance)]
            ).astype(np.float32),
        )
        return ExplainerResult(
            id=job.id,
            type=job.entry.type,
            scope="global",
            status="ok",
            ranking=top_features(importance, spread, list(explanation.feature_names)),
            fidelity={k: float(v) for k, v in explanation.fidelity.items()},
            extra=explanation.extra,
        )
