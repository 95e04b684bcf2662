"""Case 2: per-explainer overhead, auditor's explainer against the engine's own call.

(a) One batch of digits (the runner's batch size, 64): ``Explainer(...).explain(x, t)``
against the Captum / shap call a user would make on the same batch with the same
parameters, alternating A B A B.
(b) The whole explain stage on 1,000 samples: ``auditor.runner.run`` in this process (no
metrics, no report) against a bare loop of the engines' calls over the same batches; the
runner's per-explainer seconds include reading batches, writing the memory-mapped
attributions, their sha256 and the rankings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import shap
import torch
from captum.attr import (
    GradientShap,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from common import (
    BENCH,
    Section,
    Timed,
    alternate,
    calls_for,
    log,
    per_sample_spearman,
    spread_text,
    table,
)
from digits import SEED, Digits, load_digits

from auditor import registries
from auditor.explainers.shap_support import background_sample
from auditor.runner import RunOptions
from auditor.runner import run as run_audit

GRADCAM_LAYER = "features.3"
#: Explainer params of bench/specs/digits_1000.yaml (the others use their defaults).
PARAMS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"n_steps": 32},
    "gradcam": {"layer": GRADCAM_LAYER},
}
STOCHASTIC = {"gradient_shap", "shap_gradient"}


def engine_calls(d: Digits) -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The engine's own call per explainer, with auditor's default parameters."""
    model, bg = d.model, background_sample(d.context, 64, "bench")

    def saliency(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return Saliency(model).attribute(x.clone().requires_grad_(), target=t, abs=True)

    def integrated_gradients(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        attr, _ = IntegratedGradients(model).attribute(
            x.clone(),
            baselines=torch.zeros_like(x),
            target=t,
            n_steps=32,
            method="gausslegendre",
            return_convergence_delta=True,
        )
        return attr

    def gradient_shap(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        np.random.seed(SEED)
        torch.manual_seed(SEED)
        attr, _ = GradientShap(model).attribute(
            x.clone(), baselines=bg, n_samples=50, stdevs=0.0, target=t,
            return_convergence_delta=True,
        )  # fmt: skip
        return attr

    def occlusion(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return Occlusion(model).attribute(
            x.clone(),
            sliding_window_shapes=(1, 1, 1),
            strides=(1, 1, 1),
            baselines=0.0,
            target=t,
            perturbations_per_eval=16,
        )

    def gradcam(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        layer = dict(model.named_modules())[GRADCAM_LAYER]
        cam = LayerGradCam(model, layer).attribute(x.clone(), target=t, relu_attributions=True)
        cam = LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")
        return cam.mean(dim=1, keepdim=True).expand_as(x)

    def shap_gradient(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # ranked_outputs=1 explains each sample's top output (its predicted class, = t here)
        # in one batched call: shap's own way to explain only the target.
        explainer = shap.GradientExplainer(model, bg, batch_size=200)  # auditor: all draws
        values, _ = explainer.shap_values(x.clone(), nsamples=200, ranked_outputs=1, rseed=SEED)
        return torch.as_tensor(np.asarray(values)[..., 0])

    return {
        "saliency": saliency,
        "integrated_gradients": integrated_gradients,
        "gradient_shap": gradient_shap,
        "occlusion": occlusion,
        "gradcam": gradcam,
        "shap_gradient": shap_gradient,
    }


def auditor_call(name: str, d: Digits) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    cls = registries.explainers.get(name)
    params = cls.Params.model_validate(PARAMS.get(name, {}))

    def call(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return cls(d.model, params, d.context).explain(x, t)

    return call


def agreement(name: str, a: torch.Tensor, b: torch.Tensor) -> str:
    if name in STOCHASTIC:
        return "Spearman " + spread_text(per_sample_spearman(a.numpy(), b.detach().numpy()))
    return f"max abs diff {float((a - b.detach()).abs().max()):.2e}"


def one_batch(d: Digits, runs: int, batch: int, budget: float) -> tuple[str, dict[str, Any]]:
    x, t = d.inputs[:batch], d.targets[:batch]
    rows, raw = [], {}
    for name, engine in engine_calls(d).items():
        ours = auditor_call(name, d)
        variants = {"auditor": partial(ours, x, t), "engine": partial(engine, x, t)}
        inner = calls_for(variants["engine"], budget)
        timed = alternate(variants, runs, inner=inner)
        a, e = timed["auditor"], timed["engine"]
        overhead = a.median / e.median - 1
        rows.append(
            [name, f"{a.median:.4f}", f"{e.median:.4f}", f"{overhead:+.1%}",
             f"{a.minimum / e.minimum - 1:+.1%}", agreement(name, ours(x, t), engine(x, t))]
        )  # fmt: skip
        raw[name] = {"auditor": a.seconds, "engine": e.seconds, "overhead": overhead}
        log(f"case 2a {name}: auditor {a.median:.3f}s engine {e.median:.3f}s")
    text = table(
        [
            "explainer",
            "auditor s",
            "engine s",
            "overhead",
            "overhead (fastest runs)",
            "agreement (auditor vs engine)",
        ],
        rows,
    )
    return text, raw


def explain_stage(d: Digits, runs: int, n: int) -> tuple[str, dict[str, Any]]:
    """The runner's explain stage vs the bare engine loop over the same 64-sample batches."""
    engines = engine_calls(d)
    names = [k for k in engines if k != "shap_gradient"]
    spec = BENCH / "specs" / "digits_1000.yaml"
    overrides = (
        f"data.slice.stop={n}",
        "metrics=[]",
        "report.formats=[]",
        # the surrogate and permutation importance run on the slice, not batch by batch
        "explainers=" + "[" + ", ".join(_entry(k) for k in names) + "]",
    )
    x, t = d.inputs[:n], d.targets[:n]
    per_explainer: dict[str, list[float]] = {k: [] for k in names}
    stage_seconds: dict[str, list[float]] = {}
    bare: dict[str, list[float]] = {k: [] for k in names}

    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10_000))

        def runner() -> None:
            outcome = run_audit(
                spec,
                RunOptions(out=Path(tmp), overrides=overrides, run_id=f"r{next(counter)}",
                           progress="quiet"),
            )  # fmt: skip
            for k, r in outcome.results.explainers.items():
                per_explainer[k].append(float(r.seconds or 0.0))
            for k, s in outcome.results.provenance.stage_seconds.items():
                stage_seconds.setdefault(k, []).append(s)

        def engine_loop() -> None:
            for k in names:
                timed = alternate({k: lambda k=k: _loop(engines[k], x, t)}, runs=1, warmup=0)
                bare[k].append(timed[k].seconds[0])

        timed = alternate({"runner": runner, "bare": engine_loop}, runs)
    rows, raw = [], {"runner": timed["runner"].seconds, "bare": timed["bare"].seconds}
    for k in names:
        ours, theirs = Timed(k, per_explainer[k][1:]), Timed(k, bare[k][1:])
        rows.append([k, f"{ours.median:.3f}", f"{theirs.median:.3f}",
                     f"{ours.median / theirs.median - 1:+.1%}",
                     f"{ours.minimum / theirs.minimum - 1:+.1%}"])  # fmt: skip
        raw[k] = {"runner": ours.seconds, "bare": theirs.seconds}
    stages = ", ".join(f"{k} {np.median(v[1:]):.3f}s" for k, v in stage_seconds.items())
    text = (
        table(
            [
                "explainer",
                "runner s (in results.json)",
                "bare engine loop s",
                "overhead",
                "overhead (fastest runs)",
            ],
            rows,
        )
        + f"\n\nWhole run in process: runner {timed['runner'].median:.2f} s, bare loops of all "
        f"engines {timed['bare'].median:.2f} s (medians of {runs}). Runner stages (median): "
        f"{stages}."
    )
    raw["stage_seconds"] = stage_seconds
    return text, raw


def _entry(name: str) -> str:
    params = PARAMS.get(name)
    if not params:
        return f"{{type: {name}}}"
    inner = ", ".join(f"{k}: {v}" for k, v in params.items())
    return f"{{type: {name}, params: {{{inner}}}}}"


def _loop(call: Callable, x: torch.Tensor, t: torch.Tensor, batch: int = 64) -> np.ndarray:
    out = np.empty(tuple(x.shape), dtype=np.float32)
    for start in range(0, len(x), batch):
        part = call(x[start : start + batch], t[start : start + batch])
        out[start : start + batch] = part.detach().numpy()
    return out


def run(runs: int, batch: int = 64, stage_samples: int = 1000, budget: float = 0.25) -> Section:
    d = load_digits(max(batch, stage_samples))
    text_a, raw_a = one_batch(d, runs, batch, budget)
    log("case 2b: explain stage")
    text_b, raw_b = explain_stage(d, runs, stage_samples)
    worst = max(v["overhead"] for v in raw_a.values())
    text = (
        f"### (a) One batch of {batch} digits, `Explainer.explain` vs the engine's call\n\n"
        f"Medians of {runs} alternating runs each (after one warm-up); a run of a fast call "
        f"repeats it to fill about {budget:g} s and records the mean. Engine calls use "
        "auditor's default parameters; GradientSHAP's engine call is Captum's batched "
        "`GradientShap.attribute` (one seed per batch), shap_gradient's is "
        "`shap.GradientExplainer(model, bg, batch_size=200).shap_values(x, nsamples=200, "
        "ranked_outputs=1)` (shap's own way to explain only the top class).\n\n"
        f"{text_a}\n\n"
        f"### (b) Explain stage on {stage_samples} samples: runner vs bare engine loop\n\n"
        f"`auditor.runner.run` in this process with `metrics=[]`, `report.formats=[]` and "
        "the five local explainers, against a loop of the same engine calls over the same "
        f"batches of 64; the first of {runs} rounds is a warm-up and left out.\n\n{text_b}"
    )
    targets = [
        (
            "per-explainer overhead <= 10% (one batch)",
            f"worst {worst:+.1%} ("
            + ", ".join(f"{k} {v['overhead']:+.0%}" for k, v in raw_a.items())
            + ")",
            worst <= 0.10,
        )
    ]
    return Section(
        "Case 2: per-explainer overhead", text, {"batch": raw_a, "stage": raw_b}, targets
    )
