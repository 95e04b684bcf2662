"""``auditor run``: the audit pipeline, stage by stage (design.md "Data flow")."""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from torch import nn

from auditor import __version__, gallery, health, history, registries
from auditor.baseline import (
    DIFF_FOLDER,
    NO_BASELINE,
    Baseline,
    evaluate_baseline,
    is_baseline_check,
)
from auditor.baseline import resolve as resolve_baseline
from auditor.checks import evaluate, failing, stored_rankings
from auditor.data.base import AuditDataset
from auditor.data.groups import (
    FeatureGroups,
    build_groups,
    group_tie_warnings,
    with_group_ranking,
)
from auditor.data.slicing import iter_batches, select_indices
from auditor.device import (
    OnDevice,
    describe_device,
    exact_float32,
    model_device,
    nondeterministic_ops,
    precision_issues,
    resolve_device,
)
from auditor.errors import SpecError, SpecIssue, UsageError
from auditor.explain import ExplainJob, ExplainStage, feature_names, plan
from auditor.explainers.base import ExplainContext, Predictions
from auditor.hashing import sha256_file
from auditor.inference import FastInference
from auditor.internal import as_internal_error, internal_errors
from auditor.junit import junit_xml
from auditor.layer_stats import NOT_AVAILABLE, layer_stats, map_layers, save_layers
from auditor.measure import MeasureStage, explainer_runs, metric_jobs
from auditor.metrics.base import SliceAccess
from auditor.modalities import modality_of
from auditor.modalities.text import TextInputs, save_tokens
from auditor.models.base import LoadedModel
from auditor.models.graph import model_graph
from auditor.models.info import describe_model
from auditor.predict import predict, resolve_targets, summarize_predictions
from auditor.progress import Reporter
from auditor.provenance import PACKAGES, machine, package_versions
from auditor.results import (
    BaselineInfo,
    CheckResult,
    DataSummary,
    ExplainerResult,
    HealthWarning,
    LayerStat,
    PredictionSummary,
    Provenance,
    Results,
)
from auditor.resume import RunInputs, record_data, refuse_changed_weights, spec_to_run
from auditor.run_folder import RunFolder, atomic_save_npy
from auditor.scale.ray_shards import RayShards, WorkerSetup
from auditor.spec import AuditSpec, ValidatedSpec

if TYPE_CHECKING:
    from auditor.report.pdf_worker import PdfWorker

T = TypeVar("T")
BACKGROUND_SIZE = 64  # slice samples given to explainers as background (SHAP, mean baseline)


@dataclass
class RunOptions:
    out: Path | None = None
    overrides: tuple[str, ...] = ()
    run_id: str | None = None
    progress: str = "auto"  # auto | bar | log | quiet
    fail_fast: bool = False
    fail_on: str = "error"  # error | warning
    resume: Path | None = None
    reuse: Path | None = None


@dataclass
class RunOutcome:
    folder: RunFolder
    results: Results
    exit_code: int
    reports: list[Path] = field(default_factory=list)


class Stages:
    """Times each stage and turns spec errors raised late into located ones."""

    def __init__(self, validated: ValidatedSpec, reporter: Reporter) -> None:
        self.validated = validated
        self.reporter = reporter
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        start = time.perf_counter()
        self.reporter.log(f"{name} ...")
        try:
            return func(*args, **kwargs)
        except UsageError:
            raise  # about the command line, not a place in the spec
        except SpecError as exc:
            raise self.validated.doc.locate(exc) from None
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 4)


@dataclass(frozen=True)
class Planned:
    """What the plan stage hands on: the model as the modality feeds it, the data, and the
    explainer jobs. Frozen, as every stage's output: a later stage gets what an earlier one
    returned, never state another stage filled in."""

    loaded: LoadedModel  # its module is what the modality feeds (text: token ids in)
    dataset: AuditDataset
    indices: np.ndarray
    jobs: list[ExplainJob]
    #: What the modality adds for this model (``Modality.prepare``; text: ``TextInputs``).
    inputs: Any = None
    #: ``data.groups`` checked against the data's columns, or None.
    groups: FeatureGroups | None = None
    #: Where the model runs (``device``, resolved); ``loaded.module`` is there.
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: What that device is, read when planning (``auditor.device.describe_device``).
    device_info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Audit:
    """What every stage after planning reads: the spec, the plan and the run folder."""

    validated: ValidatedSpec
    options: RunOptions
    reporter: Reporter
    plan: Planned
    folder: RunFolder
    #: The run this one is compared with (``baseline:``), resolved before the folder exists.
    baseline: Baseline = NO_BASELINE

    @property
    def spec(self) -> AuditSpec:
        return self.validated.spec

    @property
    def loaded(self) -> LoadedModel:
        return self.plan.loaded

    @property
    def dataset(self) -> AuditDataset:
        return self.plan.dataset

    @property
    def indices(self) -> np.ndarray:
        return self.plan.indices

    @property
    def inputs(self) -> Any:
        return self.plan.inputs


@dataclass(frozen=True)
class Predicted:
    """The predict stage's output, read by every later stage."""

    model: nn.Module  # the model as run (precision applied)
    predictions: Predictions
    context: ExplainContext
    data_sha256: str
    summary: PredictionSummary


def run(spec_path: Path | None, options: RunOptions | None = None) -> RunOutcome:
    """Validate, load, predict, explain, measure, check, store, render.

    ``spec_path`` may be None with ``options.resume``: the run folder's own spec is run.
    An unexpected exception once the run folder exists is an ``InternalError`` whose
    traceback is in ``<run folder>/error.log``.
    """
    options = options or RunOptions()
    started = datetime.now(UTC)
    validated, overrides = spec_to_run(
        spec_path, options.resume, options.overrides, log=Reporter(options.progress).log
    )
    options = replace(options, overrides=overrides)
    with (
        Reporter(options.progress) as reporter,
        deterministic_algorithms(),
        nondeterministic_ops() as nondeterministic,
    ):
        stage = Stages(validated, reporter)
        seed_everything(validated.spec.seed)
        loaded = stage("load model", load_model, validated)
        dataset, indices = stage("load data", load_data, validated)
        planned = stage("plan", plan_run, validated, loaded, dataset, indices)
        baseline = find_baseline(validated.spec, options, reporter)
        folder = open_run_folder(validated, options, loaded)
        audit = Audit(validated, options, reporter, planned, folder, baseline)
        with internal_errors(folder.path), pdf_worker(audit) as pdf:  # warms up meanwhile
            model_info = stage("describe model", describe, audit)
            predicted = stage("predict", predict_slice, audit)
            model_info |= stage("layer stats", layer_statistics, audit, predicted)
            with ray_workers(audit, predicted) as shards:  # None for runner.backend: local
                explained = stage("explain", explain_all, audit, predicted, shards)
                measured = stage("measure", measure_all, audit, predicted, explained, shards)
            checks = stage("check", check_all, audit, predicted, explained, measured)
            results = store(
                audit,
                predicted,
                started,
                stage.seconds,
                model_info,
                explained,
                measured,
                checks,
                nondeterministic,
            )
            if baseline.path is not None:
                results = stage("compare with baseline", compare_baseline, audit, results)
            reports = stage("render", render_reports, audit, results, pdf)
            if results.exit_code in (
                0,
                1,
            ):  # a finished run: one line in <output>/<name>/index.jsonl
                history.record(folder.path, results.model_dump(mode="json"))
        reporter.log(f"{results.status.upper()}: {audit.folder.path}")
    return RunOutcome(audit.folder, results, results.exit_code, reports)


# -- stages -------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """``torch.use_deterministic_algorithms(True, warn_only=True)`` and no attention fast
    path for the run, then the caller's settings again (``run`` may be called from a
    library user's process), TF32 flags included (``plan_run`` turns TF32 off on CUDA).

    Set through ``torch._C``: the public call imports ``torch._inductor`` only to set one
    flag there (1-2 s of a run's start-up); auditor never compiles, so that flag is set only
    when inductor is already loaded.
    """
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    fastpath = torch.backends.mha.get_fastpath_enabled()
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    _set_deterministic(True, warn_only=True)
    # The fused attention fast path (nn.TransformerEncoder and nn.MultiheadAttention in eval
    # mode without gradients) turns padded batches into nested tensors, which the forward
    # hooks of the model table and layer statistics cannot read, and gives forward-only
    # passes other numbers than the gradient passes: every pass of a run takes the same path.
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        _set_deterministic(*before)
        torch.backends.mha.set_fastpath_enabled(fastpath)
        # plan_run turns TF32 off on a CUDA device (auditor.device.exact_float32)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


def _set_deterministic(enabled: bool, warn_only: bool) -> None:
    torch._C._set_deterministic_algorithms(enabled, warn_only=warn_only)
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = enabled


def load_model(validated: ValidatedSpec) -> LoadedModel:
    source = registries.models.get(validated.spec.model.source)
    return source().load(validated.model_params)


def load_data(validated: ValidatedSpec) -> tuple[AuditDataset, np.ndarray]:
    source = registries.datasets.get(validated.spec.data.source)
    dataset = source().load(validated.data_params)
    return dataset, select_indices(validated.spec.data.slice, dataset)


def plan_run(
    validated: ValidatedSpec, loaded: LoadedModel, dataset: AuditDataset, indices: np.ndarray
) -> Planned:
    """Explainer jobs, checked against the model and data before anything is written:
    modality, shape-dependent params, layer names, TorchScript, features in checks; and
    what the modality needs of the model (text: its embedding layer), after which the run
    calls the model as the modality feeds it (``Modality.prepare``); the spec's ``device``
    (``auditor.device.resolve_device``), where the model then is."""
    issues: list[SpecIssue] = []
    inputs = None
    kind = modality_of(dataset.modality)
    # float16 is CUDA autocast as bfloat16 is: the modality allows both or neither.
    precision = "bfloat16" if validated.spec.precision == "float16" else validated.spec.precision
    if precision not in kind.precisions:
        issues.append(
            SpecIssue(
                f"precision {validated.spec.precision} is not supported for {kind.name} data "
                f"(yet); use {' or '.join(kind.precisions)}",
                ("precision",),
            )
        )
    try:
        inputs = kind.prepare(dataset, loaded.module)
    except SpecError as exc:
        issues += list(exc.issues)
    if inputs is not None:
        loaded = replace(loaded, module=inputs.feed)
        if hasattr(inputs, "explainer_issues"):  # structured: columns gradients cannot reach
            issues += inputs.explainer_issues(validated.spec.explainers)
    # Text and structured feeds build their tensors on the CPU: those run there (yet).
    cpu_only = None if kind.name in ("image", "tabular") else kind.name
    device, found = resolve_device(validated.spec.device, cpu_only=cpu_only)
    issues += found + precision_issues(validated.spec.precision, device)
    issues += runner_issues(validated)
    groups = None
    if validated.spec.data.groups is not None:
        names = feature_names(dataset, None if inputs is None else inputs.vocab)
        groups, found = build_groups(dict(validated.spec.data.groups), names, dataset.modality)
        issues += found
    jobs = plan(
        validated.spec,
        validated.explainer_params,
        validated.metric_params,
        loaded.module,
        dataset,
        issues=issues,
        features=None if inputs is None else inputs.vocab,
    )
    info = describe_device(device)  # before the run takes any of its memory
    if device.type != "cpu":
        exact_float32()
        loaded = replace(loaded, module=loaded.module.to(device))
    return Planned(loaded, dataset, indices, jobs, inputs, groups, device, info)


def runner_issues(validated: ValidatedSpec) -> list[SpecIssue]:
    """``runner`` against the rest of the spec: a ``device: cuda`` whose Ray workers get no
    GPU (they would compute on the CPU), and a ``working_dir`` that does not hold the spec
    (the workers could not find it)."""
    spec, issues = validated.spec, []
    if spec.runner.backend != "ray":
        return []
    gpus = spec.runner.resources_per_worker.get("GPU", 0)
    if spec.device.startswith("cuda") and gpus <= 0:
        issues.append(
            SpecIssue(
                f"device is {spec.device} but the Ray workers get no GPU: add GPU: 1 (or a "
                "fraction) to runner.resources_per_worker, or use device: cpu",
                ("runner", "resources_per_worker"),
            )
        )
    working_dir = spec.runner.working_dir
    if working_dir is not None and not validated.path.resolve().is_relative_to(
        Path(working_dir).resolve()
    ):
        issues.append(
            SpecIssue(
                f"runner.working_dir {working_dir} does not hold the spec file "
                f"{validated.path}: the workers read the spec's paths from inside it",
                ("runner", "working_dir"),
            )
        )
    return issues


def describe(audit: Audit) -> dict[str, Any]:
    """Layers, output shapes, parameter counts, weight histograms and the block graph (the
    report's architecture diagram) of the model."""
    sample = audit.dataset.get(audit.indices[:1]).to(audit.plan.device)
    info = describe_model(audit.loaded, sample)
    module, example = audit.loaded.module, sample[:1]
    if audit.inputs is not None:  # the user's model with the arguments the feed gives it
        args, kwargs = audit.inputs.feed.arguments(example)
        names = list(inspect.signature(audit.inputs.feed.inner.forward).parameters)
        structured = not isinstance(audit.inputs, TextInputs)
        if structured and kwargs and names[: len(kwargs)] == list(kwargs):  # forward's order
            args, kwargs = list(kwargs.values()), {}
        if not kwargs:
            module, example = audit.inputs.feed.inner, tuple(args)
    graph = model_graph(module, example, info.layers)
    return {
        **info.to_dict(),
        "weight_histograms": weight_histograms(audit.loaded.module),
        "graph": graph.to_dict(),
    }


def predict_slice(audit: Audit) -> Predicted:
    """One pass over the slice: logits, targets, the gallery's samples, a summary; and the
    context explainers and metrics get (background, names, the modality's parts)."""
    spec, dataset, indices, folder = audit.spec, audit.dataset, audit.indices, audit.folder
    example = dataset.get(indices[:2])
    model = with_precision(audit.loaded.module, spec.precision, example)
    logits, data_sha256 = predict(model, dataset, indices, spec.data.batch_size, audit.reporter)
    record_data(folder, data_sha256, resuming=audit.options.resume is not None)
    labels = dataset.labels[indices]
    targets = resolve_targets(spec.targets, logits, labels, dataset.class_names)
    predictions = Predictions(logits=logits, labels=labels, targets=targets)
    context = slice_context(spec, audit.plan, model)
    if isinstance(audit.inputs, TextInputs):
        save_tokens(folder, dataset, indices, audit.inputs)
    elif audit.inputs is not None:  # structured: categories.json
        audit.inputs.save(folder, dataset, indices)
    atomic_save_npy(folder.file("predictions.npy"), logits)
    chosen = gallery.choose(spec.report.gallery, predictions, spec.seed)
    gallery.save(folder, chosen, dataset, indices, predictions)
    summary = summarize_predictions(predictions, dataset.class_names, spec.targets)
    return Predicted(model, predictions, context, data_sha256, summary)


def slice_context(spec: AuditSpec, planned: Planned, model: nn.Module) -> ExplainContext:
    """The context explainers and metrics get for this slice (``explain_context``), with
    the feature groups and, for a float32 model fed plain tensors, a frozen copy of it for
    forward passes (``FastInference``). Ray workers build theirs with it too."""
    context = explain_context(planned.dataset, planned.indices, spec.seed, planned.inputs)
    context = replace(context, groups=planned.groups)
    on_cpu = model_device(model).type == "cpu"
    if planned.inputs is None and spec.precision == "float32" and on_cpu:
        context = replace(context, inference=FastInference(model, context.background[:8]))
    return context


def layer_statistics(audit: Audit, predicted: Predicted) -> dict[str, Any]:
    """How each layer behaves on the slice (``model.layer_stats``) and, for the report,
    the gallery samples' feature maps and the first convolution's filters (layers.npz)."""
    spec, folder = audit.spec, audit.folder
    model = predicted.model
    stats = layer_stats(model, audit.dataset, audit.indices, spec.data.batch_size)
    with np.load(folder.file("gallery.npz"), allow_pickle=False) as chosen:
        inputs = np.asarray(chosen["inputs"])
    names = map_layers(spec.report.model.activations, spec.explainers)
    save_layers(folder, model, inputs, names, modality_of(audit.dataset.modality).spatial)
    rows = None if stats is None else [LayerStat(**row).model_dump() for row in stats]
    return {"layer_stats": rows, "layer_stats_note": None if stats is not None else NOT_AVAILABLE}


def check_all(
    audit: Audit,
    predicted: Predicted,
    explained: dict[str, ExplainerResult],
    measured: MeasureStage,
) -> list[CheckResult]:
    """The spec's checks; a ranking check against its own explainer's features (a local
    explainer's columns, pixels, regions or tokens; a global one's grid cells) and full
    ranking."""
    vocab = None if audit.inputs is None else audit.inputs.vocab
    units = None if audit.plan.groups is None else audit.plan.groups.names
    ranked = stored_rankings(audit.folder, explained, feature_names(audit.dataset, vocab), units)
    baseline = audit.baseline
    reason = (
        baseline.why_none
        if baseline.path is None
        else f"not yet compared with the baseline run {baseline.path.name}"
    )
    results = evaluate(
        audit.spec.checks,
        predicted.summary,
        explained,
        ranked,
        measured.model_metrics,
        baseline_reason=reason,
    )
    if baseline.path is None:
        for result in results:
            if result.status == "skipped":
                audit.reporter.log(f"check '{result.name}' skipped: {result.reason}")
    return results


def find_baseline(spec: AuditSpec, options: RunOptions, reporter: Reporter) -> Baseline:
    """The run this run is compared with, found before its own folder exists (so that
    ``previous`` cannot be this run; a resumed run leaves itself out by its id)."""
    exclude = options.run_id or (None if options.resume is None else Path(options.resume).name)
    found = resolve_baseline(spec, options.out or spec.output, exclude, reporter.log)
    if found.path is not None:
        reporter.log(f"baseline: {found.path}")
    elif spec.baseline != "none":
        reporter.log(f"baseline: none ({found.why_none})")
    return found


def compare_baseline(audit: Audit, results: Results) -> Results:
    """Compare the baseline run with this one (results stored), evaluate the baseline checks
    from the comparison, rewrite results.json and junit.xml with them and the verdict, then
    write the diff (with this run's final checks) into ``<run folder>/diff/`` (diff.json and
    the report's formats)."""
    from auditor.diff import compare_runs, with_checks_again, write_diff

    folder, path = audit.folder, audit.baseline.path
    assert path is not None
    before = json.loads((path / "results.json").read_text(encoding="utf-8"))
    provenance = before.get("provenance") or {}
    error, diff = None, None
    try:
        diff = compare_runs(path, folder.path)
    except Exception as exc:  # the run's own results stand; the checks say why
        error = f"the comparison with {path} failed: {exc}"
    checks = []
    for check, result in zip(audit.spec.checks, results.checks, strict=True):
        if not is_baseline_check(check):
            checks.append(result)
        elif diff is None:
            checks.append(result.model_copy(update={"status": "error", "reason": error}))
        else:
            checks.append(evaluate_baseline(check, diff, before, results))
    exit_code = verdict(
        results.explainers, checks, results.problems, audit.options.fail_on, results.warnings
    )
    info = BaselineInfo(
        run_id=str(before.get("run_id") or path.name),
        path=str(path),
        weights_sha256=provenance.get("weights_sha256"),
        data_sha256=provenance.get("data_sha256"),
        spec_sha256=provenance.get("spec_sha256"),
        diff=None if diff is None else DIFF_FOLDER,
        error=error,
    )
    updated = results.model_copy(
        update={
            "checks": checks,
            "exit_code": exit_code,
            "status": {0: "passed", 1: "failed"}.get(exit_code, "error"),
            "baseline": info,
        }
    )
    folder.write_json("results.json", updated.model_dump(mode="json"))
    if diff is not None:
        try:
            diff = with_checks_again(diff, path, folder.path)
            write_diff(diff, folder.file(DIFF_FOLDER), ("json", *audit.spec.report.formats))
        except Exception as exc:
            error = f"the diff was not written: {exc}"
            info = info.model_copy(update={"diff": None, "error": error})
            updated = updated.model_copy(update={"baseline": info})
            folder.write_json("results.json", updated.model_dump(mode="json"))
    if error:
        audit.reporter.log(f"baseline: {error}")
    folder.write_text("junit.xml", junit_xml(updated, audit.options.fail_on))
    return updated


def store(
    audit: Audit,
    predicted: Predicted,
    started: datetime,
    seconds: dict[str, float],
    model_info: dict[str, Any],
    explained: dict[str, ExplainerResult],
    measured: MeasureStage,
    checks: list[CheckResult],
    nondeterministic: list[str] | None = None,
) -> Results:
    """results.json and junit.xml, with the verdict; ``nondeterministic``: the ops torch
    warned have no deterministic implementation (provenance)."""
    spec, folder, summary = audit.spec, audit.folder, predicted.summary
    problems = [] if summary.finite else ["the model's outputs contain NaN or inf on the slice"]
    if measured.failed:
        problems.append("a metric failed (see the explainers' metrics)")
    data = data_summary(audit.validated, audit.dataset, audit.indices)
    if hasattr(audit.inputs, "summary"):  # structured: the fields, as run
        data = data.model_copy(update={"inputs": audit.inputs.summary})
    warnings = health.assess(
        folder, data, summary, explained, spec.report.top_k, model_info.get("layer_stats")
    )
    if audit.plan.groups is not None:  # ties of the group ranking, not of split groups
        warnings = group_tie_warnings(
            warnings, explained, folder, audit.plan.groups, spec.report.top_k
        )
    tied = {w.subject for w in warnings if w.code == "ranking_tied"}
    explained = {
        key: r.model_copy(update={"ranking_tied": True}) if key in tied else r
        for key, r in explained.items()
    }
    for warning in warnings:
        audit.reporter.log(f"warning: {warning.message}")
    if nondeterministic:
        ops = ", ".join(nondeterministic)
        audit.reporter.log(f"ops without a deterministic implementation on this device: {ops}")
    exit_code = verdict(explained, checks, problems, audit.options.fail_on, warnings)
    results = Results(
        auditor_version=__version__,
        run_id=folder.run_id,
        name=spec.name,
        title=spec.report.title or spec.name,
        description=spec.description,
        status={0: "passed", 1: "failed"}.get(exit_code, "error"),
        exit_code=exit_code,
        provenance=provenance(audit, predicted, started, seconds, nondeterministic),
        model=model_info,
        data=data,
        predictions=summary,
        explainers=explained,
        checks=checks,
        model_metrics=measured.model_metrics,
        cross_metrics=measured.cross_metrics,
        problems=problems,
        warnings=warnings,
        report_options=spec.report.model_dump(mode="json"),
    )
    folder.write_json("results.json", results.model_dump(mode="json"))
    folder.write_text("junit.xml", junit_xml(results, audit.options.fail_on))
    return results


def open_run_folder(
    validated: ValidatedSpec, options: RunOptions, loaded: LoadedModel
) -> RunFolder:
    """A new run folder holding the spec byte for byte and what the run started from
    (``inputs.json``), or the folder to resume, refused if the weights changed since."""
    if options.resume is not None:
        folder = RunFolder.open(options.resume)
        refuse_changed_weights(folder, loaded.weights_sha256)
        # The traceback of the attempt being resumed: this attempt writes its own if it fails.
        folder.file("error.log").unlink(missing_ok=True)
        if RunInputs.read(folder) is not None:
            return folder
    else:
        output = options.out or validated.spec.output
        folder = RunFolder.create(output, validated.spec.name, options.run_id)
        folder.write_bytes("spec.yaml", validated.path.read_bytes())
    inputs = RunInputs(str(validated.path), tuple(options.overrides), loaded.weights_sha256)
    inputs.write(folder)
    return folder


class _Autocast(nn.Module):
    """Runs a model under CPU bfloat16 autocast and returns float32 outputs.

    A convolutional model also runs in channels_last memory format (weights and 4-d
    inputs), the layout oneDNN's bfloat16 convolutions are fastest in, when one forward pass
    of ``example`` works so; a model that, say, ``view``s a convolution's output as if it
    were contiguous keeps the default layout. The module is the run's own copy, loaded from
    the spec's weights, so converting it in place touches nothing of the user's.
    """

    def __init__(self, module: nn.Module, example: torch.Tensor | None = None) -> None:
        super().__init__()
        self.channels_last = (
            example is not None
            and example.dim() == 4
            and any(isinstance(m, nn.Conv2d) for m in module.modules())
            and _runs_channels_last(module, example)
        )
        self.module = module
        #: Layer paths in a spec name modules of the user's model, not of this wrapper.
        self.wrapped_model = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.module(x)
        return out.float()


def _runs_channels_last(module: nn.Module, example: torch.Tensor) -> bool:
    """Put ``module`` in channels_last if a forward pass of ``example`` works so; else undo."""
    module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            module(example.contiguous(memory_format=torch.channels_last))
    except RuntimeError:
        module.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
        return False
    return True


#: Autocast dtypes of the reduced precisions.
AUTOCAST = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def with_precision(
    module: nn.Module, precision: str, example: torch.Tensor | None = None
) -> nn.Module:
    """The model as the run calls it, on the device its weights are on (``plan_run`` put
    them on the spec's ``device``).

    On the CPU: itself (float32) or under bfloat16 autocast, in channels_last when
    ``example`` (a few samples) shows that the model allows it. On a CUDA device: behind
    ``OnDevice``, which moves inputs there and outputs back, under CUDA autocast for
    bfloat16 and float16.
    """
    device = model_device(module)
    if device.type != "cpu":
        return OnDevice(module, device, AUTOCAST.get(precision)).eval()
    return _Autocast(module, example).eval() if precision == "bfloat16" else module


def explain_all(
    audit: Audit, predicted: Predicted, shards: RayShards | None = None
) -> dict[str, ExplainerResult]:
    """Every explainer in spec order; skipped when the model's outputs are not finite.
    Local explainers run here or, given ``shards`` (``runner.backend: ray``), as shards on
    its Ray workers."""
    spec, options = audit.spec, audit.options
    inputs_key = (
        f"{predicted.data_sha256}:{audit.loaded.weights_sha256}:{spec.seed}:{spec.precision}:"
        f"{sha_targets(predicted.predictions.targets)}"
    )
    device = explain_device(audit)
    if device != "cpu":  # CUDA kernels give other float rounding than the CPU
        inputs_key += f":device={device}"
    if audit.plan.groups is not None:  # perturbation explainers perturb groups as units
        inputs_key += ":groups=" + json.dumps(audit.plan.groups.as_lists())
    if hasattr(audit.inputs, "summary"):  # structured: references and embeddings shape results
        fields = json.dumps(audit.inputs.summary, sort_keys=True).encode()
        inputs_key += ":" + hashlib.sha256(fields).hexdigest()[:16]
    stage = ExplainStage(
        model=predicted.model,
        dataset=audit.dataset,
        indices=audit.indices,
        predictions=predicted.predictions,
        context=predicted.context,
        folder=audit.folder,
        batch_size=spec.data.batch_size,
        reporter=audit.reporter,
        inputs_key=inputs_key,
        resume=options.resume is not None,
        reuse=RunFolder.open(options.reuse) if options.reuse else None,
        inputs=audit.inputs if isinstance(audit.inputs, TextInputs) else None,  # token rankings
        shards=shards,
    )
    return explain_jobs(audit, predicted, stage)


def explain_device(audit: Audit) -> str:
    """Where local explainers compute: the run's device, or on Ray the workers' ("cuda" when
    each has a GPU, else "cpu")."""
    runner = audit.spec.runner
    if runner.backend == "ray":
        return "cuda" if runner.resources_per_worker.get("GPU", 0) > 0 else "cpu"
    return audit.plan.device.type


@contextmanager
def ray_workers(audit: Audit, predicted: Predicted) -> Iterator[RayShards | None]:
    """The run's Ray workers (``runner.backend: ray``; None locally) for the explain and
    measure stages: started when the first shard is sent, so a run whose explainers and
    metrics all run on the driver starts none, and stopped (with a cluster the run
    started) when the measure stage ends."""
    shards = shard_runner(audit, predicted)
    try:
        yield shards
    finally:
        if shards is not None:
            shards.close()


def shard_runner(audit: Audit, predicted: Predicted) -> RayShards | None:
    """With ``runner.backend: ray``, what sends the local explainers' shards to Ray workers:
    each worker rebuilds the run from this run folder's spec, the overrides and the targets."""
    runner = audit.spec.runner
    if runner.backend != "ray":
        return None
    spec_path = audit.validated.path.resolve()
    if runner.working_dir is not None:  # where the spec sits in the shipped folder
        spec_path = spec_path.relative_to(Path(runner.working_dir).resolve())
    setup = WorkerSetup(
        spec_text=audit.folder.file("spec.yaml").read_text(encoding="utf-8"),
        spec_path=str(spec_path),
        overrides=tuple(audit.options.overrides),
        indices=audit.indices,
        targets=predicted.predictions.targets,
    )
    return RayShards(runner, setup, audit.spec.data.batch_size, audit.reporter.log)


def explain_jobs(
    audit: Audit, predicted: Predicted, stage: ExplainStage
) -> dict[str, ExplainerResult]:
    """The explain stage's jobs in spec order, each isolated from the others' failures."""
    jobs, options, finite = audit.plan.jobs, audit.options, predicted.summary.finite
    if stage.shards is None:
        stage.share_gradients(jobs)
    results: dict[str, ExplainerResult] = {}
    for job in jobs:
        stop = options.fail_fast and any(r.status == "failed" for r in results.values())
        if not finite or stop:
            why = "the model's outputs are not finite" if not finite else "--fail-fast"
            results[job.id] = ExplainerResult(
                id=job.id,
                type=job.entry.type,
                scope=job.cls.scope,
                status="skipped",
                error=f"skipped: {why}",
            )
            continue
        results[job.id] = stage.run(job)
        if isinstance(stage.shards, RayShards) and job.cls.scope == "local":
            results[job.id] = with_ray_record(results[job.id], stage.shards.record(job.id))
        if results[job.id].status == "failed":
            audit.reporter.log(f"explain {job.id}: FAILED: {results[job.id].error}")
        elif hasattr(audit.inputs, "save_fields"):  # structured: attributions/<id>/<field>.npy
            audit.inputs.save_fields(audit.folder, results[job.id])
        if audit.plan.groups is not None and results[job.id].status == "ok":
            results[job.id] = with_group_ranking(results[job.id], audit.folder, audit.plan.groups)
    return results


def with_ray_record(result: ExplainerResult, record: dict[str, Any]) -> ExplainerResult:
    """``result`` with its Ray record in ``extra["ray"]``; its time per sample without the
    wait for the cluster and the workers to start (``seconds`` keeps the whole time)."""
    result.extra["ray"] = record
    startup = record.get("startup_seconds") or 0.0
    if result.seconds_per_sample and result.seconds is not None and startup:
        n = result.seconds / result.seconds_per_sample
        result.seconds_per_sample = max(result.seconds - startup, 0.0) / n
    return result


def weight_histograms(module: nn.Module, bins: int = 40) -> dict[str, dict[str, list[float]]]:
    """A histogram of each weight tensor (biases and norms left out), for the report."""
    out = {}
    for name, param in module.named_parameters():
        if param.dim() < 2:
            continue
        values = param.detach().float().cpu().numpy().ravel()
        counts, edges = np.histogram(values, bins=bins)
        out[name] = {
            "edges": [float(e) for e in edges],
            "counts": [int(c) for c in counts],
            "mean": float(values.mean()),
            "std": float(values.std()),
        }
    return out


def explain_context(
    dataset: AuditDataset, indices: np.ndarray, seed: int, inputs: Any = None
) -> ExplainContext:
    """What explainers and metrics may know of the run; ``inputs`` is what the modality
    prepared (text: the vocabulary is the features, gradients run at the embedding)."""
    background = background_samples(dataset, indices, seed)
    if hasattr(inputs, "bind"):  # structured: removal at the background mean, seeded draws
        inputs = inputs.bind(background, seed)
    return ExplainContext(
        modality=dataset.modality,
        input_shape=tuple(dataset.input_shape),
        seed=seed,
        background=background,
        feature_names=dataset.feature_names if inputs is None else inputs.vocab,
        class_names=dataset.class_names,
        embedding=None if inputs is None else inputs.space,
        removed=None if inputs is None else inputs.removed,
    )


def measure_all(
    audit: Audit,
    predicted: Predicted,
    explained: dict[str, ExplainerResult],
    shards: RayShards | None = None,
) -> MeasureStage:
    """Every metric of the spec (and those its checks name) over the finished explanations.
    Per-sample metrics run here or, given ``shards`` (``runner.backend: ray``), as shards on
    its Ray workers."""
    stage = MeasureStage(
        model=predicted.model,
        data=SliceAccess(audit.dataset, audit.indices, audit.spec.data.batch_size),
        predictions=predicted.predictions,
        context=predicted.context,
        folder=audit.folder,
        reporter=audit.reporter,
        explained=explained,
        runs=explainer_runs(explained, audit.plan.jobs, audit.folder),
        shards=shards,
    )
    for job in metric_jobs(audit.spec, audit.validated.metric_params):
        stage.run(job)
    return stage


def sha_targets(targets: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(targets).tobytes()).hexdigest()[:16]


def background_samples(dataset: AuditDataset, indices: np.ndarray, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    chosen = np.sort(
        rng.choice(len(indices), size=min(BACKGROUND_SIZE, len(indices)), replace=False)
    )
    return dataset.get(indices[chosen])


def verdict(
    explained: dict[str, ExplainerResult],
    checks: list,
    problems: list[str],
    fail_on: str,
    warnings: list[HealthWarning] | None = None,
) -> int:
    """3 the run failed; 1 a check failed (or a health warning, with ``--fail-on warning``);
    0 every check passed."""
    if problems or any(r.status == "failed" for r in explained.values()):
        return 3
    if failing(checks, fail_on) or (fail_on == "warning" and warnings):
        return 1
    return 0


def provenance(
    audit: Audit,
    predicted: Predicted,
    started: datetime,
    seconds: dict[str, float],
    nondeterministic: list[str] | None = None,
) -> Provenance:
    finished = datetime.now(UTC)
    info = machine(audit.plan.device)
    spec = audit.spec
    return Provenance(
        spec_sha256=sha256_file(audit.folder.file("spec.yaml")),
        weights_sha256=audit.loaded.weights_sha256,
        data_sha256=predicted.data_sha256,
        versions=package_versions((*PACKAGES, "ray") if spec.runner.backend == "ray" else PACKAGES),
        seed=spec.seed,
        precision=spec.precision,
        inference=predicted.context.inference.describe()
        if predicted.context.inference is not None
        else "eager",
        device=str(info["device"]),
        device_info=audit.plan.device_info or describe_device(audit.plan.device),
        nondeterministic_ops=list(nondeterministic or []),
        threads=int(info["threads"]),
        hostname=str(info["hostname"]),
        started=started.isoformat(),
        finished=finished.isoformat(),
        seconds=(finished - started).total_seconds(),
        stage_seconds=dict(seconds),
        overrides=list(audit.options.overrides),
        runner=spec.runner.model_dump(mode="json") if spec.runner.backend == "ray" else None,
    )


def data_summary(
    validated: ValidatedSpec, dataset: AuditDataset, indices: np.ndarray
) -> DataSummary:
    labels = dataset.labels[indices]
    counts = np.bincount(labels, minlength=len(dataset.class_names))
    slice_spec = validated.spec.data.slice
    return DataSummary(
        source=validated.spec.data.source,
        description=dataset.description,
        modality=dataset.modality,
        input_shape=list(dataset.input_shape),
        class_names=dataset.class_names,
        feature_names=dataset.feature_names,
        slice=slice_spec.model_dump_json(exclude_none=True) if slice_spec else "all samples",
        n=len(indices),
        batch_size=validated.spec.data.batch_size,
        class_counts={name: int(counts[i]) for i, name in enumerate(dataset.class_names)},
        feature_summary=feature_summary(dataset, indices, validated.spec.data.batch_size),
        ranked_features=modality_of(dataset.modality).ranked_features(
            tuple(dataset.input_shape), dataset.feature_names
        ),
    )


def feature_summary(
    dataset: AuditDataset, indices: np.ndarray, batch_size: int
) -> list[dict[str, Any]] | None:
    """Mean, std, min and max of each tabular feature over the slice (streamed), in the
    data's own units (``AuditDataset.raw_values``) where the source standardized them."""
    if not modality_of(dataset.modality).fixed_features:
        return None
    n_features = int(np.prod(dataset.input_shape))
    count, mean, m2 = 0, np.zeros(n_features), np.zeros(n_features)
    low, high = np.full(n_features, np.inf), np.full(n_features, -np.inf)
    for chunk in iter_batches(indices, batch_size):
        raw = dataset.raw_values(chunk)
        x = raw if raw is not None else dataset.get(chunk).numpy()
        x = x.reshape(len(chunk), -1).astype(np.float64)
        # Chan's merge of chunk statistics: no cancellation for large values with small spread
        chunk_mean = x.mean(axis=0)
        delta = chunk_mean - mean
        total = count + len(x)
        m2 += ((x - chunk_mean) ** 2).sum(axis=0) + delta**2 * count * len(x) / total
        mean += delta * len(x) / total
        count = total
        low, high = np.minimum(low, x.min(axis=0)), np.maximum(high, x.max(axis=0))
    std = np.sqrt(m2 / max(count, 1))
    names = dataset.feature_names or [f"x{i}" for i in range(n_features)]
    units = "model" if dataset.raw_values(indices[:1]) is None else "data"
    return [
        {
            "name": names[i],
            "mean": mean[i],
            "std": std[i],
            "min": low[i],
            "max": high[i],
            "units": units,  # "data": the data's own units; "model": as fed to the model
        }
        for i in range(n_features)
    ]


def pdf_worker(audit: Audit) -> AbstractContextManager[PdfWorker | None]:
    """A PDF worker started now, for a spec that asks for a PDF: it imports weasyprint and
    lays out a warm-up page while the audit computes (about 1 to 2 s of one core that the
    report would otherwise wait for); stopped on the way out. None (``nullcontext``) for a
    spec without a PDF, or on one CPU."""
    if "pdf" not in audit.spec.report.formats:
        return nullcontext()
    from auditor.report.pdf_worker import PdfWorker

    return PdfWorker.start() or nullcontext()


def render_reports(audit: Audit, results: Results, worker: PdfWorker | None = None) -> list[Path]:
    """The spec's report formats (the PDF through ``worker`` when one was started). A
    report that cannot be rendered is an internal error, and results.json and junit.xml say
    so: they must not call a run passed that exits 3."""
    from auditor.report import render

    folder = audit.folder
    try:
        return render(folder, audit.spec.report.formats, worker)
    except Exception as exc:
        error = as_internal_error(exc, folder.path)
        failed = results.model_copy(
            update={
                "status": "error",
                "exit_code": error.exit_code,
                "problems": [*results.problems, f"the report was not rendered: {error}"],
            }
        )
        folder.write_json("results.json", failed.model_dump(mode="json"))
        folder.write_text("junit.xml", junit_xml(failed, audit.options.fail_on))
        raise error from exc
