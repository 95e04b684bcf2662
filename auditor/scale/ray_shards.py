"""Local explainers and per-sample metrics as shards of the slice on Ray actors
(``runner: {backend: ray}``).

Each actor (``auditor.scale.worker.AuditWorker``) loads the model, the data and each
explainer's engine once and then explains shard after shard: a shard is ``shard_size``
samples rounded up to whole batches of ``data.batch_size``, so every batch is the batch a
local run computes, under the same per-sample seeds, and the attributions equal a local
run's.

The driver writes. Workers return a shard's attributions through Ray's object store and the
driver puts them into the run folder's memory-mapped file at their sample offsets
(``AttributionWriter``, which takes batches in any order and records each one, so a killed
run resumes with the shards not yet written). Workers never need the run folder: a cluster
has no path every node shares in general, and the arrays are small beside the work that
made them (a 224x224 RGB attribution is 0.6 MB against about 30 forward and backward passes).

Per-sample metrics (``BatchMetric``: deletion, insertion, infidelity, max-sensitivity,
stability, the randomization sanity check, completeness) run the same way: each shard
carries its samples' attributions, read by the driver from the stored file, and comes back
as per-sample arrays; the driver joins them in slice order and computes the summaries
(``BatchMetric.finish``) from them, as a local run does.

Failures: a worker process that dies (``RayActorError``) is replaced by a new actor and its
shard is sent again; an explainer or metric that raises in a shard is tried once more.
Every retry is recorded (``ExplainerResult.extra["ray"]``, a metric record's ``ray``) and
logged. A shard that fails twice fails its explainer (or metric record) with the error, as
a local run does.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from auditor.errors import RunError
from auditor.explain import ExplainJob
from auditor.metrics.base import BatchMetric, ExplainerRun, PerSample
from auditor.progress import Task
from auditor.run_folder import AttributionWriter
from auditor.scale.worker import BatchResult
from auditor.spec.model import RunnerSpec

#: Shards sent ahead to each actor, so that it never waits for the driver between shards.
IN_FLIGHT = 2
#: Attempts a shard gets before its explainer fails.
ATTEMPTS = 2
#: Seconds between "waiting for workers" lines, and before a worker that never starts
#: (the cluster cannot place it, say) fails the run's local explainers.
HEARTBEAT = 30.0
START_TIMEOUT = 600.0


@dataclass
class Shard:
    number: int
    batches: list[tuple[int, np.ndarray]]
    attempt: int = 1

    @property
    def samples(self) -> tuple[int, int]:
        """First and last sample position (within the slice) of the shard."""
        return int(self.batches[0][1][0]), int(self.batches[-1][1][-1])


def shards_of(batches: list[tuple[int, np.ndarray]], per_shard: int) -> list[Shard]:
    """Consecutive groups of ``per_shard`` batches (the last may be shorter)."""
    return [
        Shard(i // per_shard, batches[i : i + per_shard]) for i in range(0, len(batches), per_shard)
    ]


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RunError(
            "runner.backend is ray but Ray is not installed: pip install 'auditor[ray]'"
        ) from None
    return ray


@dataclass
class WorkerSetup:
    """What every actor is built from (see ``AuditWorker``)."""

    spec_text: str
    spec_path: str  # relative paths in the spec resolve from its folder
    overrides: tuple[str, ...]
    indices: np.ndarray
    targets: np.ndarray


@dataclass
class RayShards:
    """Sends a local explainer's batches to Ray actors and writes what comes back."""

    runner: RunnerSpec
    setup: WorkerSetup
    batch_size: int
    log: Callable[[str], None]
    ray: Any = None
    actors: list[Any] = field(default_factory=list)
    started_cluster: bool = False
    #: Retries per explainer id: {"shard", "samples", "attempt", "error"}.
    retries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)
    #: Why the cluster or its workers could not start, once they failed to.
    broken: str | None = None
    #: Where the workers compute (``AuditWorker.ready``): "cpu" or "cuda:0 (name)".
    device: str | None = None
    #: Seconds an explainer waited for the cluster and the workers to start (the first).
    startup: dict[str, float] = field(default_factory=dict)

    # -- cluster and actors -----------------------------------------------------------------
    def start(self) -> None:
        """Connect to (or start) the cluster and build the actors; waits until all are ready.

        A failed start fails every later explainer at once with the same error.
        """
        if self.broken is not None:
            raise RunError(self.broken)
        if self.actors:
            return
        try:
            self._start()
        except Exception as exc:
            self.broken = str(exc) if isinstance(exc, RunError) else f"ray: {_cause(exc)}"
            raise RunError(self.broken) from None

    def _start(self) -> None:
        ray = self.ray = import_ray()
        if not ray.is_initialized():
            self.started_cluster = True  # before init: a Ctrl-C in it still shuts it down
            self._connect(ray)
        workers = self._workers_that_fit(ray.cluster_resources())
        self.log(f"ray: {workers} workers, each {self.runner.resources_per_worker}")
        self.actors = [self._new_actor() for _ in range(workers)]
        ready = {a.ready.remote(): a for a in self.actors}
        waited = 0.0
        while ready:
            done, _ = ray.wait(list(ready), num_returns=len(ready), timeout=HEARTBEAT)
            for ref in done:
                ready.pop(ref)
                try:
                    self.device = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise RunError(
                        f"ray: a worker could not load the audit: {_cause(exc)}"
                    ) from None
            waited += HEARTBEAT
            if ready and waited >= START_TIMEOUT:
                raise RunError(
                    f"ray: {len(ready)} of {workers} workers did not start within "
                    f"{START_TIMEOUT:.0f} s (each asks for {self.runner.resources_per_worker}; "
                    f"the cluster has {_resources(ray.cluster_resources())})"
                )
            if ready:
                self.log(f"ray: waiting for {len(ready)} of {workers} workers to start")

    def _workers_that_fit(self, cluster: dict[str, float]) -> int:
        """``runner.workers``, or as many as the cluster's resources hold (logged); a
        RunError when not one fits (Ray would wait for such a worker for ever)."""
        wanted = {"CPU": 1.0, **self.runner.resources_per_worker}
        fit = self.runner.workers
        for name, amount in wanted.items():
            if amount > 0:
                fit = min(fit, int(cluster.get(name, 0.0) // amount))
        if fit < 1:
            raise RunError(
                f"ray: no worker fits the cluster: each asks for {_resources(wanted)}, the "
                f"cluster has {_resources(cluster)} (runner.resources_per_worker)"
            )
        if fit < self.runner.workers:
            self.log(
                f"ray: only {fit} of runner.workers={self.runner.workers} fit the cluster's "
                f"{_resources(cluster)}; running {fit}"
            )
        return fit

    def _connect(self, ray: Any) -> None:
        """``ray.init``: the named cluster, else (``auto`` finding none) a local one."""
        kwargs: dict[str, Any] = {
            "log_to_driver": False,  # workers' output stays in Ray's logs, not in the run's
            "include_dashboard": False,
            "logging_level": logging.ERROR,
        }
        if self.runner.working_dir is not None:
            kwargs["runtime_env"] = {"working_dir": str(self.runner.working_dir)}
        address = self.runner.address
        if address not in ("auto", "local"):
            refuse_unreachable(address)
            ray.init(address=address, **kwargs)
            self.log(f"ray: connected to {address}")
            return
        if address == "auto" and _cluster_named():
            try:
                ray.init(address="auto", **kwargs)
                self.log("ray: connected to the running cluster")
                return
            except ConnectionError:
                pass  # a stale record of a cluster that is gone
        want = self.runner.workers * self.runner.resources_per_worker.get("CPU", 1.0)
        cpus = max(1, math.ceil(want))
        cores = os.cpu_count() or 1
        more = f"; more than this machine's {cores} cores" if cpus > cores else ""
        self.log(f"ray: starting a local cluster ({cpus} CPUs, loopback only{more})")
        ray.init(address="local", num_cpus=cpus, _node_ip_address="127.0.0.1", **kwargs)

    def _new_actor(self) -> Any:
        from auditor.scale.worker import AuditWorker

        resources = dict(self.runner.resources_per_worker)
        options: dict[str, Any] = {
            "num_cpus": resources.pop("CPU", 1.0),
            "num_gpus": resources.pop("GPU", 0.0),
            "max_restarts": 0,
        }
        if resources:
            options["resources"] = resources
        remote = self.ray.remote(AuditWorker).options(**options)
        s = self.setup
        threads = math.floor(options["num_cpus"])
        device = "cuda" if options["num_gpus"] > 0 else "cpu"  # Ray shows it its own GPUs
        overrides = (*s.overrides, f"device={device}")
        return remote.remote(s.spec_text, s.spec_path, overrides, s.indices, s.targets, threads)

    def close(self) -> None:
        """Stop the actors; shut the cluster down when this run started it."""
        if self.ray is None:
            return
        try:
            for actor in self.actors:
                self.ray.kill(actor)
        finally:
            self.actors = []
            if self.started_cluster:
                self.ray.shutdown()

    # -- one explainer or metric ------------------------------------------------------------
    def explain(
        self,
        job: ExplainJob,
        batches: list[tuple[int, np.ndarray]],
        writer: AttributionWriter,
        task: Task,
    ) -> None:
        """Every batch of ``batches`` explained by ``job`` on the actors, written by ``writer``."""

        def submit(actor: Any, shard: Shard) -> Any:
            return actor.explain.remote(job.index, shard.batches)

        def receive(results: list[BatchResult]) -> None:
            for b, start, attr, stats in results:
                writer.write(b, start, attr, stats)
                task.advance()

        self._shards(job.id, f"explain {job.id}", batches, submit, receive)

    def measure(
        self,
        key: str,
        metric: BatchMetric,
        run: ExplainerRun,
        batches: list[tuple[int, np.ndarray]],
        task: Task,
    ) -> list[PerSample]:
        """``metric``'s per-sample arrays of every batch of ``batches`` (in their order),
        measured on the actors. ``key`` names the record (``<explainer>.<metric>``).

        Each shard carries its samples' attributions, read from the explainer's stored
        file when the shard is sent (not before: a retried shard reads them again).
        """
        parts: dict[int, PerSample] = {}

        def submit(actor: Any, shard: Shard) -> Any:
            rows = [
                (b, positions, np.array(run.attributions[positions], dtype=np.float32))
                for b, positions in shard.batches
            ]
            return actor.measure.remote(key, metric, run.id, rows)

        def receive(results: list[tuple[int, PerSample]]) -> None:
            for b, part in results:
                parts[b] = part
                task.advance()

        self._shards(key, f"measure {key}", batches, submit, receive)
        return [parts[b] for b, _ in batches]

    def _shards(
        self,
        key: str,
        label: str,
        batches: list[tuple[int, np.ndarray]],
        submit: Callable[[Any, Shard], Any],
        receive: Callable[[Any], None],
    ) -> None:
        """``batches`` in shards on the actors: ``submit(actor, shard)`` sends one (an object
        ref back), ``receive(result)`` takes what a shard returned."""
        if not batches:  # a resumed run that had written them all
            return
        starting, began = not self.actors, time.perf_counter()
        self.start()
        if starting:  # this explainer (or metric) waited for the cluster and the workers
            self.startup[key] = time.perf_counter() - began
        per_shard = max(1, -(-self.runner.shard_size // self.batch_size))
        queue = shards_of(batches, per_shard)
        self.shards[key] = len(queue)
        pending: dict[Any, tuple[Shard, int]] = {}  # object ref -> shard, actor slot
        try:
            self._dispatch(key, label, queue, pending, submit, receive)
        finally:
            for ref in pending:  # after a failure: shards still queued on the actors
                with contextlib.suppress(Exception):  # best effort: close() kills them anyway
                    self.ray.cancel(ref)

    def _dispatch(
        self,
        key: str,
        label: str,
        queue: list[Shard],
        pending: dict[Any, tuple[Shard, int]],
        submit: Callable[[Any, Shard], Any],
        receive: Callable[[Any], None],
    ) -> None:
        ray = self.ray
        load = [0] * len(self.actors)
        while queue or pending:
            for slot in range(len(self.actors)):
                while queue and load[slot] < IN_FLIGHT:
                    shard = queue.pop(0)
                    pending[submit(self.actors[slot], shard)] = (shard, slot)
                    load[slot] += 1
            done, _ = ray.wait(list(pending), num_returns=1)
            shard, slot = pending.pop(done[0])
            load[slot] -= 1
            try:
                results = ray.get(done[0])
            except ray.exceptions.RayActorError as exc:  # the worker process died
                self._replace(slot, pending, queue, load)  # first: the slot must not stay dead
                self._retry(key, label, shard, f"worker died: {_cause(exc)}", queue)
                continue
            except ray.exceptions.RayTaskError as exc:  # the explainer or metric raised
                self._retry(key, label, shard, _cause(exc), queue, error=exc)
                continue
            except ray.exceptions.RayError as exc:  # lost objects, out of memory, ...
                self._retry(key, label, shard, f"{type(exc).__name__}: {_cause(exc)}", queue)
                continue
            receive(results)

    def _retry(
        self,
        key: str,
        label: str,
        shard: Shard,
        why: str,
        queue: list[Shard],
        error: Exception | None = None,
    ) -> None:
        first, last = shard.samples
        record = {"shard": shard.number, "samples": [first, last], "attempt": shard.attempt}
        self.retries.setdefault(key, []).append({**record, "error": why})
        if shard.attempt >= ATTEMPTS:
            if error is not None and isinstance(getattr(error, "cause", None), Exception):
                raise error.cause from None  # the explainer's own error, as in a local run
            raise RunError(f"shard {shard.number} (samples {first}-{last}) failed twice: {why}")
        self.log(
            f"{label}: shard {shard.number} (samples {first}-{last}) failed: "
            f"{why.splitlines()[0] if why else why}; retrying"
        )
        queue.insert(0, Shard(shard.number, shard.batches, shard.attempt + 1))

    def _replace(
        self, slot: int, pending: dict[Any, tuple[Shard, int]], queue: list[Shard], load: list[int]
    ) -> None:
        """A new actor in ``slot``; the shards the dead one still held go back to the queue."""
        lost = [ref for ref, (_, s) in pending.items() if s == slot]
        for ref in lost:
            shard, _ = pending.pop(ref)
            queue.insert(0, shard)
        load[slot] = 0
        self.ray.kill(self.actors[slot])
        self.actors[slot] = self._new_actor()

    def record(self, key: str) -> dict[str, Any]:
        """What ``ExplainerResult.extra["ray"]`` (or a metric record's ``ray``) says of the
        shards of an explainer (its id) or a metric (``<explainer>.<metric>``)."""
        return {
            "workers": len(self.actors) or self.runner.workers,
            "device": self.device,
            "shards": self.shards.get(key, 0),
            "retries": self.retries.get(key, []),
            "startup_seconds": round(self.startup.get(key, 0.0), 3),
        }


def refuse_unreachable(address: str, timeout: float = 5.0) -> None:
    """A RunError unless something accepts TCP connections at ``address`` (host:port or
    ray://host:port): ``ray.init`` would otherwise retry an unreachable address for ever."""
    hostport = address.removeprefix("ray://").rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RunError(f"runner.address {address!r}: expected host:port or ray://host:port")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RunError(
            f"runner.address {address}: no Ray cluster answers there ({exc.strerror or exc})"
        ) from None


def _cluster_named() -> bool:
    """True when RAY_ADDRESS names a cluster or one was started on this machine (``ray start``)."""
    if os.environ.get("RAY_ADDRESS"):
        return True
    return Path("/tmp/ray/ray_current_cluster").exists()


def _resources(amounts: dict[str, float]) -> str:
    """``{CPU: 2, GPU: 1}``: the resources that matter for placing a worker."""
    shown = {k: v for k, v in amounts.items() if "memory" not in k and not k.startswith("node:")}
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(shown.items())) + "}"


def _cause(exc: BaseException) -> str:
    """The error a Ray exception wraps, in one line: ``Type: message``."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
