"""Case text: the text audit (issue 13) on the 1,000 example reviews.

(a) Layer Integrated Gradients overhead. auditor's ``integrated_gradients`` as the explain
stage runs it (the registered explainer with the runner's text ``ExplainContext``, batches
of 64, ``Explainer.explain`` -> ``EmbeddingSpace``) against the loop a user would write with
Captum: ``LayerIntegratedGradients(model, model.embedding).attribute(ids, baselines=
reference_ids, target=t, additional_forward_args=(mask,), n_steps=32,
method="gausslegendre")`` summed over the embedding dimension, the reference ids being
every real token replaced by ``[MASK]`` with the padding kept. Alternating A B A B; the
per-token attributions of the two must agree within 1e-5 (Sundararajan et al. 2017, IG at
the embedding output).
(b) The explain stage of ``auditor.runner.run`` in this process with only that explainer
(no metrics, checks or report) against the same bare Captum loop: the runner's explainer
seconds also read the batches, write the memory-mapped attributions, hash and rank them.
(c) ``auditor run audits/text_classifier.yaml`` end to end as a child process (HTML report
only), with the seconds of each stage, explainer and metric from its results.json.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from captum.attr import LayerIntegratedGradients
from common import (
    AUDITOR,
    ROOT,
    Section,
    Timed,
    alternate,
    alternate_children,
    log,
    table,
)
from torch import nn

from auditor import registries
from auditor.explainers.base import ExplainContext
from auditor.modalities import modality_of
from auditor.modalities.text import TextInputs, removed
from auditor.runner import RunOptions, explain_context, load_data, load_model
from auditor.runner import run as run_audit
from auditor.spec.load import load_spec

SPEC = ROOT / "audits" / "text_classifier.yaml"
BATCH = 64
N_STEPS = 32
TOLERANCE = 1e-5
TARGET = 0.10
#: kernel_shap is the last but one explainer of the spec (index 4).
KERNEL_SHAP = "explainers[4].params.nsamples"


@dataclass
class Texts:
    """The example model and texts as the runner sees them."""

    model: nn.Module  # the user's TextClassifier (eval, no parameter gradients)
    inputs: TextInputs  # what the text modality prepared: the TextFeed, EmbeddingSpace, ...
    ids: torch.Tensor  # (N, L) int64, right-padded with [PAD]
    targets: torch.Tensor  # predicted classes
    context: ExplainContext  # built by the runner's explain_context


def load_texts(n: int) -> Texts:
    """The first ``n`` texts of the example spec, loaded by the runner's own stages."""
    validated = load_spec(SPEC, (f"data.slice.stop={n}",), plan=False)
    loaded = load_model(validated)
    dataset, indices = load_data(validated)
    inputs = modality_of(dataset.modality).prepare(dataset, loaded.module)
    ids = dataset.get(indices).to(torch.long)
    with torch.no_grad():
        targets = inputs.feed(ids).argmax(dim=1)
    context = explain_context(dataset, indices, validated.spec.seed, inputs)
    return Texts(inputs.feed.inner, inputs, ids, targets, context)


def auditor_loop(t: Texts) -> torch.Tensor:
    """The explain stage's work for integrated_gradients: one explainer, batches of 64."""
    cls = registries.explainers.get("integrated_gradients")
    explainer = cls(t.inputs.feed, cls.Params.model_validate({"n_steps": N_STEPS}), t.context)
    parts = [
        explainer.explain(t.ids[s : s + BATCH], t.targets[s : s + BATCH])
        for s in range(0, len(t.ids), BATCH)
    ]
    return torch.cat(parts)


def captum_loop(t: Texts) -> torch.Tensor:
    """The bare Captum loop a user would write: per-token sums of LayerIG, batches of 64."""
    pad, mask_id = t.inputs.pad_id, t.inputs.remove_id
    lig = LayerIntegratedGradients(t.model, t.model.embedding)
    parts = []
    for s in range(0, len(t.ids), BATCH):
        ids = t.ids[s : s + BATCH]
        mask = (ids != pad).long()
        attr = lig.attribute(
            ids,
            baselines=removed(ids, pad, mask_id),
            target=t.targets[s : s + BATCH],
            additional_forward_args=(mask,),
            n_steps=N_STEPS,
            method="gausslegendre",
        )
        parts.append(attr.sum(dim=-1).detach())
    return torch.cat(parts)


def overhead(t: Texts, runs: int) -> tuple[str, dict[str, Any], float, float]:
    """(a): the table, raw seconds, the median overhead and the max abs difference.

    Timed with torch's default threads (as every case) and again with one thread: on a
    machine shared with other jobs, torch's intra-op threads wait for each other on every
    small operation, which can make both loops many times slower and their ratio noisy.
    """
    ours, theirs = auditor_loop(t), captum_loop(t)
    diff = float((ours - theirs).abs().max())
    variants = {"auditor": lambda: auditor_loop(t), "captum": lambda: captum_loop(t)}
    threads = torch.get_num_threads()
    timed = alternate(variants, runs)
    torch.set_num_threads(1)
    try:
        single = alternate(variants, runs)
    finally:
        torch.set_num_threads(threads)
    a, c = timed["auditor"], timed["captum"]
    ratio = a.median / c.median - 1
    a1, c1 = single["auditor"], single["captum"]
    ratio1 = a1.median / c1.median - 1
    log(f"case text (a): auditor {a.median:.3f}s captum {c.median:.3f}s ({ratio:+.1%}); "
        f"one thread {a1.median:.3f}s / {c1.median:.3f}s ({ratio1:+.1%})")  # fmt: skip
    rows = [
        [k, str(n), f"{v.median:.3f}", v.spread]
        for n, group in ((threads, timed), (1, single))
        for k, v in group.items()
    ]
    text = (
        table(["variant", "torch threads", "median s", "min..max s"], rows)
        + f"\n\n**Overhead of auditor over the bare Captum loop: {ratio:+.1%}** with "
        f"{threads} torch threads (target: at most {TARGET:+.0%}; ratio of the fastest runs "
        f"{a.minimum / c.minimum - 1:+.1%}); with one thread {ratio1:+.1%} (fastest runs "
        f"{a1.minimum / c1.minimum - 1:+.1%}). Max abs difference of the per-token "
        f"attributions: {diff:.1e} (tolerance {TOLERANCE:g}); the largest |attribution| is "
        f"{float(theirs.abs().max()):.3g}."
    )
    raw = {"auditor": a.seconds, "captum": c.seconds, "overhead": ratio, "max_abs_diff": diff,
           "threads": threads, "auditor_1_thread": a1.seconds, "captum_1_thread": c1.seconds,
           "overhead_1_thread": ratio1}  # fmt: skip
    return text, raw, ratio, diff


def explain_stage(t: Texts, runs: int, n: int) -> tuple[str, dict[str, Any]]:
    """(b): the runner's explain stage with only integrated_gradients vs the Captum loop."""
    overrides = (
        f"data.slice.stop={n}",
        "metrics=[]",
        "checks=[]",
        "report.formats=[]",
        f"explainers=[{{type: integrated_gradients, params: {{n_steps: {N_STEPS}}}}}]",
    )
    seconds: list[float] = []
    stages: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10_000))

        def runner() -> None:
            outcome = run_audit(
                SPEC,
                RunOptions(out=Path(tmp), overrides=overrides, run_id=f"r{next(counter)}",
                           progress="quiet"),
            )  # fmt: skip
            seconds.append(float(outcome.results.explainers["integrated_gradients"].seconds))
            for k, s in outcome.results.provenance.stage_seconds.items():
                stages.setdefault(k, []).append(s)

        bare = Timed("captum")
        timed = alternate(
            {"runner": runner, "captum": lambda: _timed(bare, lambda: captum_loop(t))}, runs
        )
    ours, theirs = Timed("runner", seconds[1:]), Timed("captum", bare.seconds[1:])  # warm-up
    ratio = ours.median / theirs.median - 1
    log(f"case text (b): runner IG {ours.median:.3f}s captum {theirs.median:.3f}s")
    rows = [
        ["integrated_gradients in results.json", f"{ours.median:.3f}", ours.spread],
        ["bare Captum loop", f"{theirs.median:.3f}", theirs.spread],
    ]
    stage_text = ", ".join(f"{k} {np.median(v[1:]):.3f} s" for k, v in stages.items())
    text = (
        table(["variant", "median s", "min..max s"], rows)
        + f"\n\nOverhead of the explain stage's integrated_gradients: {ratio:+.1%} (fastest "
        f"runs {ours.minimum / theirs.minimum - 1:+.1%}). Whole run in process: "
        f"{timed['runner'].median:.2f} s (median); its stages: {stage_text}."
    )
    return text, {"runner": ours.seconds, "captum": theirs.seconds, "overhead": ratio,
                  "stage_seconds": stages}  # fmt: skip


def _timed(into: Timed, func: Any) -> None:
    import time

    start = time.perf_counter()
    func()
    into.seconds.append(time.perf_counter() - start)


def end_to_end(runs: int, n: int, nsamples: int | None) -> tuple[str, dict[str, Any]]:
    """(c): ``auditor run`` on the example spec as a child process, HTML report only."""
    sets = [f"data.slice.stop={n}", "report.formats=[html]"]
    sets += [] if nsamples is None else [f"{KERNEL_SHAP}={nsamples}"]
    flags = [a for s in sets for a in ("--set", s)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def command(r: int) -> list[str | Path]:
            return [AUDITOR, "run", SPEC, "-q", "--out", out, "--run-id", f"r{r}", *flags]

        timed = alternate_children({"auditor run": command}, runs)["auditor run"]
        folders = [out / "text-classifier" / f"r{r}" for r in range(runs)]
        results = [json.loads((f / "results.json").read_text()) for f in folders]
        for folder, result in zip(folders, results, strict=True):
            stages = result["provenance"]["stage_seconds"]
            stages.setdefault("render (html)", render_seconds(folder))
        shown = shlex.join(str(a).replace(tmp, "TMP") for a in command(0))
    stage_rows = _medians([r["provenance"]["stage_seconds"] for r in results])
    explainer_rows = _medians(
        [{k: v.get("seconds") or 0.0 for k, v in r["explainers"].items()} for r in results]
    )
    metric_rows = _medians(
        [
            {f"{m} ({k})": rec.get("seconds") or 0.0
             for k, v in r["explainers"].items() for m, rec in v.get("metrics", {}).items()}
            for r in results
        ]
    )  # fmt: skip
    last = results[-1]
    checks = ", ".join(f"{c.get('name', '?')} {c['status']}" for c in last.get("checks", []))
    in_process = float(np.median([r["provenance"]["seconds"] for r in results]))
    text = f"""Command (round 0):

    {shown}

{runs} run(s): wall time of the child process {timed.median:.2f} s (median; {timed.spread} s),
peak RSS {timed.median_rss:.0f} MB; the run's own total (results.json) {in_process:.2f} s. Run
status: {last.get("status")}; checks: {checks or "none"}.

Stages (results.json `provenance.stage_seconds`, medians; the render stage runs after
results.json is written and is timed from the files' mtimes):

{table(["stage", "median s"], stage_rows)}

Explainers (seconds each, including writing and ranking the attributions):

{table(["explainer", "median s"], explainer_rows)}

Metrics:

{table(["metric (explainer)", "median s"], metric_rows)}
"""
    raw = {"seconds": timed.seconds, "rss_mb": timed.rss_mb, "status": last.get("status"),
           "stage_seconds": [r["provenance"]["stage_seconds"] for r in results]}  # fmt: skip
    return text, raw


def render_seconds(run_dir: Path) -> float:
    """The render stage ends after results.json is written: time it by the files' mtimes."""
    reports = [p.stat().st_mtime for p in run_dir.glob("report.*")]
    return max(reports) - (run_dir / "results.json").stat().st_mtime if reports else 0.0


def _medians(dicts: list[dict[str, float]]) -> list[list[str]]:
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return [[k, f"{np.median([d[k] for d in dicts if k in d]):.3f}"] for k in keys]


def run(runs: int, samples: int = 1000, e2e_runs: int = 1, nsamples: int | None = None) -> Section:
    t = load_texts(samples)
    text_a, raw_a, ratio, diff = overhead(t, runs)
    log("case text (b): explain stage in the runner")
    text_b, raw_b = explain_stage(t, runs, samples)
    log("case text (c): end to end")
    text_c, raw_c = end_to_end(e2e_runs, samples, nsamples)
    kernel = (
        "kernel_shap at shap's default nsamples (2 * tokens + 2048)"
        if nsamples is None
        else f"kernel_shap with `--set {KERNEL_SHAP}={nsamples}` (the spec: shap's default)"
    )
    text = f"""The example text audit (`audits/text_classifier.yaml`: `examples/text_models.py`
TextClassifier, embedding 147 x 32 + masked mean + MLP; `data/text_reviews.csv`, the first
{samples} texts, max_length 32, tokenizer `models/text_tokenizer.json`; [MASK] is the
remove token; targets: predicted).

### (a) Layer Integrated Gradients, {samples} texts in batches of {BATCH}: auditor vs Captum

auditor: the registered `integrated_gradients` (n_steps {N_STEPS}, gausslegendre) built with
the runner's `explain_context` on the `TextFeed`, `Explainer.explain` per batch (the whole
batch at once in embedding space, padding as an extra channel). Captum:
`LayerIntegratedGradients(model, model.embedding).attribute(ids, baselines=reference_ids,
target=t, additional_forward_args=(mask,), n_steps={N_STEPS}, method="gausslegendre")` summed
over the embedding dimension, reference ids = every real token replaced by [MASK], padding
kept. Medians of {runs} alternating runs after one warm-up.

{text_a}

### (b) The explain stage in the runner vs the bare Captum loop

`auditor.runner.run` in this process with only integrated_gradients (`metrics=[]`,
`checks=[]`, `report.formats=[]`); its seconds include reading the batches, writing the
attributions, their sha256 and the token rankings. The first of {runs} rounds is a warm-up
and left out.

{text_b}

### (c) The text audit end to end

`auditor run` as a child process on the example spec (saliency, integrated_gradients
n_steps 32, occlusion window 1, lime, {kernel}, surrogate_linear; deletion,
randomization_sanity, completeness_error on integrated_gradients; its three checks), HTML
report only.

{text_c}"""
    targets = [
        (
            "text: layer IG overhead over a bare Captum loop <= +10%",
            f"{ratio:+.1%}",
            ratio <= TARGET,
        ),
        (
            f"text: IG per-token attributions equal Captum's within {TOLERANCE:g}",
            f"max abs diff {diff:.1e}",
            diff <= TOLERANCE,
        ),
    ]
    return Section(
        "Case text: the text audit and layer IG overhead (issue 13)",
        text,
        {"overhead": raw_a, "stage": raw_b, "end_to_end": raw_c},
        targets,
    )
