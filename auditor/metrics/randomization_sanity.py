"""Model randomization sanity check: do the maps change when the model's weights do?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim 2018, "Sanity Checks for Saliency Maps",
NeurIPS, https://arxiv.org/abs/1810.03292. Cascading randomization: on a copy of the
model, the parameterized layers are re-initialized one after another from the top (the
output layer) down; after each step the explainer runs again on the same samples and
targets, and its maps are compared with the original ones by the Spearman rank
correlation of |attribution| and the SSIM of the maps scaled to [0, 1] (images). A map
that stays similar when the model has been destroyed does not explain the model; the
explainer passes when the similarity at the fully randomized model is below
``threshold``.

Re-initialization: a layer's own ``reset_parameters`` (PyTorch's default init) under
``torch.manual_seed(seed + step)``, otherwise a seeded normal with each parameter's
standard deviation. With ``max_steps`` below the number of layers, neighbouring layers
are randomized together.

Ties: with a zero baseline, Integrated Gradients (and DeepLIFT, input x gradient,
single-pixel occlusion) is exactly zero wherever the input is zero, in the original and in
every randomized model; those shared zeros keep a rank correlation over all pixels high
(about 0.9 on digits) after full randomization. ``region: nonzero`` (the default) ranks
only the features where the original or the randomized map is nonzero, so ties no
randomization can break are left out, for every explainer alike; ``region: baseline`` ranks
the features where the input differs from the explainer's baseline (IG, DeepLIFT, input x
gradient; every feature for the others); ``all`` ranks every feature. The note says which,
and what share of the features was compared. SSIM is always over the whole map.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from auditor.explainers.baselines import make_baseline
from auditor.metrics.base import (
    BatchMetric,
    ExplainedBatch,
    ExplainerRun,
    MetricContext,
    MetricOutput,
    PerSample,
)
from auditor.metrics.similarity import (
    feature_maps,
    nanmean,
    normalize_maps,
    spearman_rows,
    ssim_pairs,
)
from auditor.modalities import modality_of
from auditor.plugin import Params

#: Explainers whose attribution is (x - reference) times something: zero where x == reference.
ZERO_BASELINE_TYPES = frozenset({"input_x_gradient"})


class RandomizationSanityParams(Params):
    samples: int = Field(
        16, ge=1, le=100_000, description="First samples of the slice explained at every step."
    )
    threshold: float = Field(
        0.5,
        ge=-1.0,
        le=1.0,
        description="Pass when the similarity at the fully randomized model is below this.",
    )
    criterion: Literal["spearman", "ssim", "both"] = Field(
        "spearman",
        description="Similarity that must fall below the threshold (ssim: images only).",
    )
    region: Literal["nonzero", "baseline", "all"] = Field(
        "nonzero",
        description="Features whose ranks are compared: nonzero (in the original or the "
        "randomized map), baseline (where the input differs from the explainer's baseline), "
        "or all.",
    )
    max_steps: int = Field(
        16,
        ge=1,
        le=10_000,
        description="Most cascade steps; neighbouring layers are randomized together beyond.",
    )
    ssim_sigma: float = Field(
        1.5, gt=0.0, le=100.0, description="Gaussian window sigma of SSIM, in pixels."
    )


class RandomizationSanity(BatchMetric):
    """Similarity of maps under cascading layer randomization (Adebayo et al. 2018)."""

    name: ClassVar[str] = "randomization_sanity"
    Params = RandomizationSanityParams
    direction: ClassVar[Literal["higher", "lower"]] = "lower"
    value_range: ClassVar[tuple[float, float] | None] = (-1.0, 1.0)  # a rank correlation
    needs: ClassVar[tuple[str, ...]] = ("model copy", "re-runs the explainer")

    def check(self, ctx: MetricContext) -> None:
        super().check(ctx)
        if self.params.criterion != "spearman" and not is_image(ctx):
            raise ValueError(
                f"criterion '{self.params.criterion}' needs images; this data is "
                f"{ctx.context.modality}"
            )
        if not self.prepare(ctx):
            raise ValueError("the model has no layer with parameters to randomize")

    def prepare(self, ctx: MetricContext) -> list[list[str]]:
        """The cascade's steps: layer names of the user's model, not of the run's wrapper
        (precision, device)."""
        return cascade(getattr(ctx.model, "wrapped_model", ctx.model), self.params.max_steps)

    def measure_batch(self, ctx: MetricContext, prepared: Any, batch: ExplainedBatch) -> PerSample:
        """The whole cascade on this batch: per sample and step, the Spearman and the SSIM,
        ``(B, steps)``, and the share of features compared at the last step ``(B,)``.

        Each batch randomizes a fresh copy of the model, step by step with the same seeds,
        so every batch meets the same randomized models.
        """
        p, steps, run = self.params, prepared, ctx.explainer
        if run is None:
            raise ValueError("randomization_sanity measures one explainer; none was given")
        image, modality = is_image(ctx), ctx.context.modality
        before = Maps(
            feature_maps(batch.attributions.numpy(), modality),
            input_region(run, ctx, batch.inputs, p.region),
            images=image,
        )
        model = copy.deepcopy(ctx.model).eval()
        modules = dict(getattr(model, "wrapped_model", model).named_modules())
        rhos, ssims, share = [], [], np.zeros(0)
        for step, names in enumerate(steps):
            for layer in names:
                randomize(modules[layer], ctx.context.seed + step)
            explainer = run.rebuild(model, ctx.context)
            after = feature_maps(explainer.explain(batch.inputs, batch.targets).numpy(), modality)
            rho, share = before.spearman(after, nonzero=p.region == "nonzero")
            rhos.append(rho)
            ssims.append(before.ssim(after, p.ssim_sigma) if image else np.full(len(rho), math.nan))
        return {"spearman": np.stack(rhos, axis=1), "ssim": np.stack(ssims, axis=1), "share": share}

    def finish(self, ctx: MetricContext, values: PerSample) -> MetricOutput:
        p, run, steps = self.params, ctx.explainer, self.prepare(ctx)
        if run is None:
            raise ValueError("randomization_sanity measures one explainer; none was given")
        image = is_image(ctx)
        spearman, ssims = values["spearman"], values["ssim"]
        curves: dict[str, list] = {
            "layers": [names[-1] for names in steps],
            "spearman": [rounded(nanmean(spearman[:, s])) for s in range(len(steps))],
            "ssim": [rounded(nanmean(ssims[:, s])) for s in range(len(steps))],
        }
        rho = spearman[:, -1]
        final = {"spearman": nanmean(rho), "ssim": nanmean(ssims[:, -1])}
        chosen = ["spearman", "ssim"] if p.criterion == "both" else [p.criterion]
        passed = all(final[c] < p.threshold for c in chosen)
        result = {"spearman_final": final["spearman"], "passed": float(passed)}
        if image:
            result["ssim_final"] = final["ssim"]
        else:
            del curves["ssim"]
        share = float(np.mean(values["share"]))
        return MetricOutput(
            per_sample=rho,
            values=result,
            curves=curves,
            note=(
                f"{len(rho)} samples, {len(steps)} cascade steps from {steps[0][0]} down to "
                f"{steps[-1][-1]}; Spearman of |attribution| over "
                f"{region_words(run, p.region, share)}; {'passed' if passed else 'failed'}: "
                f"{' and '.join(chosen)} at the fully randomized model "
                f"{'below' if passed else 'not below'} {p.threshold:g}."
            ),
        )


def is_image(ctx: MetricContext) -> bool:
    """Whether the maps are 2-D images (SSIM applies)."""
    spatial = modality_of(ctx.context.modality).spatial
    return spatial and len(ctx.context.input_shape) == 3


class Maps:
    """The original maps of the measured samples, ``(N, *unit shape)``, and the features
    each one compares (``regions``, boolean, same shape); every sample at once."""

    def __init__(self, maps: np.ndarray, regions: np.ndarray, *, images: bool = False) -> None:
        if maps.shape != regions.shape:
            raise ValueError(f"maps {maps.shape} and regions {regions.shape} differ in shape")
        self.maps, self.regions = maps, regions
        self.flat = maps.reshape(len(maps), -1)
        self.flat_regions = regions.reshape(len(regions), -1)
        #: Each map scaled to [0, 1], for SSIM: once, not at every cascade step.
        self.normalized = normalize_maps(maps) if images else None

    def spearman(self, after: np.ndarray, *, nonzero: bool) -> tuple[np.ndarray, np.ndarray]:
        """Spearman per sample over its region, and the share of features compared."""
        if after.shape != self.maps.shape:
            raise ValueError(f"maps of shape {self.maps.shape} before, {after.shape} after")
        b = after.reshape(len(after), -1)
        keep = self.flat_regions & ((self.flat != 0) | (b != 0)) if nonzero else self.flat_regions
        shares = keep.mean(axis=1) if keep.size else np.full(len(keep), math.nan)
        return spearman_rows(self.flat, b, keep), shares

    def ssim(self, after: np.ndarray, sigma: float) -> np.ndarray:
        if after.shape != self.maps.shape:
            raise ValueError(f"maps of shape {self.maps.shape} before, {after.shape} after")
        normalized = normalize_maps(self.maps) if self.normalized is None else self.normalized
        return ssim_pairs(normalized, normalize_maps(after), sigma=sigma)


def rounded(value: float) -> float | None:
    """A curve point for results.json: 6 decimals, None for NaN (JSON has no NaN)."""
    return None if math.isnan(value) else round(value, 6)


def cascade(model: nn.Module, max_steps: int) -> list[list[str]]:
    """Names of the layers with their own parameters, top (last registered) first, in steps."""
    layers = [
        name
        for name, module in model.named_modules()
        if any(True for _ in module.parameters(recurse=False))
    ][::-1]
    if len(layers) <= max_steps:
        return [[name] for name in layers]
    return [list(chunk) for chunk in np.array_split(np.asarray(layers, dtype=object), max_steps)]


@torch.no_grad()
def randomize(module: nn.Module, seed: int) -> None:
    """Re-initialize a layer's own parameters, seeded: its ``reset_parameters`` if any.

    Drawn on the CPU, whatever device the layer is on, so that every device draws the same
    weights (CUDA's generator gives other numbers for the same seed).
    """
    device = next(module.parameters(recurse=False), torch.empty(0)).device
    if device.type != "cpu":
        module.to("cpu")
        try:
            randomize(module, seed)
        finally:
            module.to(device)
        return
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
            return
        for param in module.parameters(recurse=False):
            std = float(param.std()) if param.numel() > 1 else 0.0
            param.normal_(0.0, std if std > 0 else 0.01)


def input_region(
    run: ExplainerRun, ctx: MetricContext, inputs: torch.Tensor, region: str
) -> np.ndarray:
    """Per sample, a boolean map of the features that may be compared (before zeros)."""
    kind = reference_kind(run) if region == "baseline" else None
    if kind is not None and ctx.context.removed is not None:  # text: the removed tokens
        differs = ctx.context.removed(inputs) != inputs
    elif kind is None:
        differs = torch.ones_like(inputs, dtype=torch.bool)
    else:
        reference = make_baseline(kind, inputs, ctx.context.background, seed=ctx.context.seed)
        differs = inputs != reference
    return feature_maps(differs.numpy().astype(np.float64), ctx.context.modality) > 0


def reference_kind(run: ExplainerRun) -> str | None:
    """The baseline an explainer's attributions vanish at, or None."""
    if run.type in ZERO_BASELINE_TYPES:
        return "zeros"
    kind = getattr(run.params, "baseline", None)
    return kind if isinstance(kind, str) else None


def region_words(run: ExplainerRun, region: str, share: float) -> str:
    if region == "nonzero":
        return (
            f"the features where the original or the fully randomized map is nonzero "
            f"({share:.0%} of them; features that are exactly 0 in both are ties no "
            f"randomization can break)"
        )
    kind = reference_kind(run) if region == "baseline" else None
    if kind is None:
        return "every feature"
    return (
        f"the features where the input differs from the '{kind}' baseline ({share:.0%} of "
        f"them; the attributions are exactly 0 elsewhere in every model)"
    )
