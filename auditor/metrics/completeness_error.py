"""Completeness error: how far attributions are from summing to the output difference.

Completeness (Sundararajan, Taly, Yan 2017, "Axiomatic Attribution for Deep Networks",
https://arxiv.org/abs/1703.01365; "summation-to-delta" in Shrikumar, Greenside, Kundaje
2017, https://arxiv.org/abs/1704.02685; "local accuracy" in Lundberg, Lee 2017,
https://arxiv.org/abs/1705.07874): the attributions of a sample sum to
``f(x) - f(reference)``, with ``f`` the target's logit. The error per sample is
``|sum(attributions) - (f(x) - f(reference))| / |f(x)|``, from the stored attributions and
fresh forward passes.

The reference is rebuilt from the explainer's params: the baseline of Integrated Gradients
and DeepLIFT (``make_baseline`` with the run's background and seed; a ``uniform`` baseline
spans the range of each batch as in the explainer, so keep the slice's batch size), the
mean output over the explainer's seeded background subset for DeepSHAP and the
expected-gradients methods, the background summary of KernelSHAP, and the masked image of
PartitionSHAP. For IG the error of the quadrature falls about as ``1/n_steps``, so the note
says how many steps a tolerance needs; for IG with ``n_steps: auto`` it says what the
adaptive rule reached and with how many gradient evaluations (its per-sample ``steps``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from auditor.explainers.baselines import make_baseline
from auditor.explainers.shap_support import background_sample
from auditor.metrics.base import (
    BatchMetric,
    ExplainedBatch,
    ExplainerRun,
    MetricContext,
    MetricOutput,
    PerSample,
)
from auditor.plugin import Params

#: Explainer types whose attributions sum to f(x) - f(reference), by kind of reference.
BASELINE_TYPES = frozenset({"integrated_gradients", "deeplift"})
BACKGROUND_TYPES = frozenset({"deep_shap", "gradient_shap", "shap_gradient", "shap_deep"})
SAMPLED_TYPES = frozenset({"gradient_shap", "shap_gradient"})
#: Mean and max error of Captum's Gauss-Legendre IG (zero baseline) on the trained digits
#: CNN, 256 held-out digits: the error falls about as 1 / n_steps.
IG_MEASURED = {4: (0.019, 0.11), 32: (0.0021, 0.011), 64: (0.0010, 0.0041), 256: (0.00027, 0.0011)}


class CompletenessErrorParams(Params):
    samples: int | None = Field(
        None, ge=1, le=10_000_000, description="First samples of the slice measured (None: all)."
    )
    tolerance: float = Field(
        0.01,
        gt=0.0,
        le=1.0,
        description="Mean error the note sizes Integrated Gradients' n_steps for.",
    )


class CompletenessError(BatchMetric):
    """|sum of attributions - (f(x) - f(reference))| / |f(x)| per sample (lower is better)."""

    name: ClassVar[str] = "completeness_error"
    Params = CompletenessErrorParams
    direction: ClassVar[Literal["higher", "lower"]] = "lower"
    value_range: ClassVar[tuple[float, float] | None] = (0.0, float("inf"))  # |relative error|
    explainer_types: ClassVar[frozenset[str] | None] = (
        BASELINE_TYPES | BACKGROUND_TYPES | {"kernel_shap", "shap_partition"}
    )
    needs: ClassVar[tuple[str, ...]] = ("model forward passes", "the explainer's reference")

    def check(self, ctx: MetricContext) -> None:
        run = ctx.explainer
        if run is None or run.type not in (self.explainer_types or ()):
            raise ValueError("completeness_error needs an explainer with a reference")

    def measure_batch(self, ctx: MetricContext, prepared: Any, batch: ExplainedBatch) -> PerSample:
        run = ctx.explainer
        if run is None:
            raise ValueError("completeness_error needs an explainer with a reference")
        with torch.no_grad():
            logits = ctx.model(batch.inputs)
        rows = torch.arange(len(batch.inputs))
        f_x = logits[rows, batch.targets].to(torch.float64)
        f_ref = reference_outputs(run, ctx, batch.inputs, batch.targets)
        total = batch.attributions.reshape(len(rows), -1).to(torch.float64).sum(1)
        gap = (total - (f_x - f_ref)).abs()
        return {"error": (gap / f_x.abs().clamp_min(1e-12)).numpy()}

    def finish(self, ctx: MetricContext, values: PerSample) -> MetricOutput:
        run = ctx.explainer
        if run is None:
            raise ValueError("completeness_error needs an explainer with a reference")
        error = values["error"]
        result = {"max": float(error.max())}
        words = reference_words(run, ctx.context.removed is not None, ctx.context.modality)
        note = f"{len(error)} samples; reference: {words}."
        if run.type in SAMPLED_TYPES:
            note += " Expected gradients are complete in expectation only: more draws, less error."
        if run.type == "integrated_gradients" and run.params.n_steps == "auto":
            note += " " + auto_note(run, error)
            result["gradient_evaluations"] = float(sum(run.stats.get("steps", [])))
        elif run.type == "integrated_gradients":
            steps = suggested_steps(run.params.n_steps, float(error.mean()), self.params.tolerance)
            result["suggested_steps"] = float(steps)
            note += " " + steps_note(run.params, float(error.mean()), self.params.tolerance, steps)
        return MetricOutput(per_sample=error, values=result, note=note)


@torch.no_grad()
def reference_outputs(
    run: ExplainerRun, ctx: MetricContext, inputs: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """``f_t(reference)`` per sample, float64 ``(B,)``, as the explainer defined it."""
    p, context, model = run.params, ctx.context, ctx.model
    rows = torch.arange(len(inputs))
    if context.embedding is not None and run.cls.differentiable:
        if context.modality == "structured":
            # Categorical columns at their reference embeddings, dense columns at the
            # explainer's own baseline: where its path starts.
            outputs = context.embedding.reference_outputs(
                model, inputs, params=p, seed=context.seed
            )
            return outputs[rows, targets].double()
        # Text, gradient methods: the removed text's embedding with the sample's own mask.
        return context.embedding.reference_outputs(model, inputs)[rows, targets].double()
    draws = getattr(context.embedding, "draws", None)
    if run.type == "kernel_shap" and draws is not None:
        # Structured: KernelSHAP's expected value over the sample's removed copies.
        copies = draws(inputs)
        flat = copies.reshape(-1, *inputs.shape[1:])
        outputs = model(flat).to(torch.float64).reshape(len(inputs), copies.shape[1], -1)
        return outputs.mean(1)[rows, targets]
    if context.removed is not None:
        # Text, perturbation methods: the sample with its tokens removed (padding kept).
        return model(context.removed(inputs))[rows, targets].to(torch.float64)
    if run.type in BASELINE_TYPES:
        baseline = make_baseline(p.baseline, inputs, context.background, seed=context.seed)
        return model(baseline)[rows, targets].to(torch.float64)
    if run.type == "shap_partition":
        reference = make_baseline(p.mask, inputs, context.background, blur_sigma=p.blur_sigma)
        return model(reference)[rows, targets].to(torch.float64)
    if run.type in BACKGROUND_TYPES:
        background = background_sample(context, p.n_background, run.type)
        return model(background).to(torch.float64).mean(0)[targets]
    if run.type == "kernel_shap":
        # shap's expected value: the weighted mean output over the explainer's summary.
        summary = run.rebuild(model, context).background_summary(tuple(inputs.shape[1:]))
        data = np.asarray(getattr(summary, "data", summary), dtype=np.float32)
        weights = np.asarray(getattr(summary, "weights", np.ones(len(data))), dtype=np.float64)
        x = torch.as_tensor(data).reshape(len(data), *inputs.shape[1:])
        outputs = model(x).to(torch.float64)
        mean = (outputs * torch.as_tensor(weights / weights.sum())[:, None]).sum(0)
        return mean[targets]
    raise ValueError(f"completeness_error has no reference for explainer type '{run.type}'")


def reference_words(run: ExplainerRun, removed: bool = False, modality: str = "") -> str:
    p = run.params
    if modality == "structured" and run.cls.differentiable:
        base = getattr(p, "baseline", None)
        dense = f"the '{base}' baseline" if isinstance(base, str) else "zeros"
        return (
            "every categorical column at its reference value's embedding, the dense columns at "
            f"{dense} (LayerIntegratedGradients' baseline)"
        )
    if modality == "structured" and removed:
        return "every categorical column at its reference value, the dense columns at their mean"
    if removed and run.cls.differentiable:
        return (
            "every token's embedding replaced by the remove_with token's, under the text's own "
            "attention mask (LayerIntegratedGradients' baseline)"
        )
    if removed:
        return "the text with every token replaced by the remove_with token"
    if run.type in BASELINE_TYPES:
        return f"the '{p.baseline}' baseline"
    if run.type == "shap_partition":
        return f"the '{p.mask}' masked image"
    if run.type == "kernel_shap":
        return "the mean output over the explainer's background summary"
    return f"the mean output over {p.n_background} background samples of the slice"


def suggested_steps(n_steps: int, error: float, tolerance: float) -> int:
    """Steps for a mean error of ``tolerance``, if the error falls as ``1 / n_steps``."""
    if not math.isfinite(error) or error <= 0:
        return n_steps
    return max(1, math.ceil(n_steps * error / tolerance))


def auto_note(run: ExplainerRun, error: np.ndarray) -> str:
    """What ``n_steps: auto`` did: its tolerance, the gradients it took, the samples left
    above it; with this metric's own error, which divides by ``|f(x)|``, not the
    explainer's ``|f(x) - f(reference)|``."""
    p = run.params
    steps = np.asarray(run.stats.get("steps", []), dtype=np.float64)
    above = int(np.sum(run.stats.get("above_tolerance", [])))
    if steps.size == 0:
        return f"Integrated Gradients with n_steps auto (tolerance {p.tolerance:.3g})."
    reached = (
        "on every sample"
        if above == 0
        else f"on {steps.size - above} of {steps.size} samples ({above} stopped at "
        f"{int(steps.max())} steps above it)"
    )
    return (
        f"Integrated Gradients with n_steps auto reached {p.tolerance:.3g} of "
        f"|f(x) - f(reference)| {reached} with {int(steps.sum()):,} gradient evaluations "
        f"({steps.mean():.3g} per sample, {int(steps.min())} to {int(steps.max())}; nested "
        f"midpoint rules from {p.min_steps} steps). Here, relative to |f(x)|: mean "
        f"{float(error.mean()):.3g}, max {float(error.max()):.3g}."
    )


def steps_note(params: object, error: float, tolerance: float, steps: int) -> str:
    n_steps = getattr(params, "n_steps", 0)
    method = getattr(params, "method", "")
    measured = ", ".join(f"{m:g} at {n}" for n, (m, _) in IG_MEASURED.items())
    verdict = (
        f"within the tolerance {tolerance:g}; about {steps} steps would suffice"
        if error <= tolerance
        else f"above the tolerance {tolerance:g}: about {steps} steps are needed"
    )
    return (
        f"Integrated Gradients with {n_steps} {method} steps: mean error {error:.3g}, "
        f"{verdict}. The quadrature error falls about as 1/n_steps (trained digits CNN, "
        f"Gauss-Legendre, zero baseline: mean {measured} steps)."
    )
