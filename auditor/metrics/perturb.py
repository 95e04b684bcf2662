"""Perturbation curves: remove or reveal features in order of attribution.

Shared by ``deletion`` and ``insertion`` (Petsiuk, Das, Saenko 2018, "RISE: Randomized
Input Sampling for Explanation of Black-box Models", https://arxiv.org/abs/1806.07421).

Features are groups of input elements: square patches of ``patch`` pixels over all
channels for images, single columns for tabular rows. Groups are switched from a
``start`` input to an ``end`` input (deletion: input -> baseline; insertion: baseline ->
input) in ``steps`` equal steps, in the order of their mean attribution or in a seeded
random order; the target's softmax probability along the way is the curve, and its
trapezoid area over the fraction switched (0..1) is the per-sample score. The perturbed
inputs of many (sample, step) pairs are built and run through the model together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from auditor.errors import SpecIssue
from auditor.explainers.base import issues_of
from auditor.explainers.baselines import BaselineKind, make_baseline
from auditor.explainers.grid import check_square
from auditor.metrics.base import (
    BatchMetric,
    ExplainedBatch,
    MetricContext,
    MetricOutput,
    PerSample,
)
from auditor.modalities import modality_of
from auditor.plugin import Params


#: Image patches per shorter side by default: 16 x 16 patches, 1 pixel on 8x8 digits.
def feature_groups(
    input_shape: tuple[int, ...], modality: str, patch: int | None
) -> tuple[torch.Tensor, int]:
    """The group of each input element, shape ``input_shape``, and the number of groups.

    Images ``(C, H, W)``: patches of ``patch`` x ``patch`` pixels over all channels,
    numbered row by row (edge patches may be smaller). Tabular: one group per element.
    """
    return modality_of(modality).perturbation_groups(tuple(input_shape), patch)


def group_scores(attributions: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean attribution of each group, ``(B, *shape) -> (B, n_groups)`` float64."""
    flat = attributions.reshape(len(attributions), -1).to(torch.float64)
    index = groups.reshape(-1)
    sums = torch.zeros(len(flat), n_groups, dtype=torch.float64).index_add_(1, index, flat)
    return sums / torch.bincount(index, minlength=n_groups).to(torch.float64)


def ranks_of(order: torch.Tensor) -> torch.Tensor:
    """``ranks[i, g]``: the position of group ``g`` in sample ``i``'s ``order``."""
    ranks = torch.empty_like(order)
    positions = torch.arange(order.shape[1]).expand_as(order)
    return ranks.scatter_(1, order, positions)


def attribution_ranks(scores: torch.Tensor) -> torch.Tensor:
    """Ranks of groups by descending score (ties keep the group order)."""
    return ranks_of(torch.argsort(-scores, dim=1, stable=True))


def random_ranks(
    positions: np.ndarray, n_groups: int, seed: int, live: np.ndarray | None = None
) -> torch.Tensor:
    """A random order per sample, seeded by the run's seed and the sample's slice position.

    The order of a sample does not depend on the batch it is in or on the explainer, so
    every explainer is compared with the same random baseline. With ``live`` ``(B,
    n_groups)`` (text: the sample's own tokens), only live groups are shuffled, first.
    """
    if live is None:
        rows = [np.random.default_rng([seed, int(p)]).permutation(n_groups) for p in positions]
    else:
        rows = []
        for p, keep in zip(positions, live, strict=True):
            own = np.flatnonzero(keep)
            shuffled = own[np.random.default_rng([seed, int(p)]).permutation(len(own))]
            rows.append(np.concatenate([shuffled, np.flatnonzero(~keep)]))
    return ranks_of(torch.as_tensor(np.stack(rows), dtype=torch.long))


@torch.no_grad()
def probability_curves(
    model: nn.Module,
    start: torch.Tensor,
    end: torch.Tensor,
    ranks: torch.Tensor,
    groups: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    max_batch: int,
    counts: torch.Tensor | None = None,
) -> np.ndarray:
    """Target probability after switching the first ``k/steps`` of the groups to ``end``.

    ``start``, ``end``: ``(B, *shape)``; ``ranks``: ``(B, n_groups)``; returns ``(B, steps
    + 1)`` (step 0 is ``start`` itself, the last step is ``end``). At most ``max_batch``
    perturbed inputs go through the model at once. ``counts`` ``(B,)``: the groups each
    sample has (text: its tokens, ranked first), so that a step is a share of them.
    """
    batch, shape = len(start), tuple(start.shape[1:])
    n_groups = ranks.shape[1]
    fractions = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    if counts is None:
        switched = torch.round(torch.linspace(0, n_groups, steps + 1)).long().expand(batch, -1)
    else:
        switched = torch.round(fractions[None, :] * counts[:, None].double()).long()
    element_ranks = ranks[:, groups.reshape(-1)].reshape(batch, *shape)
    total = batch * (steps + 1)
    out = torch.empty(total, dtype=torch.float64)
    for begin in range(0, total, max_batch):
        j = torch.arange(begin, min(begin + max_batch, total))
        sample, step = j // (steps + 1), j % (steps + 1)
        limit = switched[sample, step].view(-1, *([1] * len(shape)))
        x = torch.where(element_ranks[sample] < limit, end[sample], start[sample])
        probs = torch.softmax(model(x).to(torch.float64), dim=1)
        out[j] = probs[torch.arange(len(j)), targets[sample]]
    return out.reshape(batch, steps + 1).numpy()


def area_under(curves: np.ndarray) -> np.ndarray:
    """Trapezoid area of each row over ``x`` evenly spaced in [0, 1]."""
    steps = curves.shape[1] - 1
    return (curves[:, :-1] + curves[:, 1:]).sum(axis=1) / (2 * steps)


class CurveParams(Params):
    steps: int = Field(16, ge=1, le=1000, description="Steps from no feature to every feature.")
    patch: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="Images: side in pixels of the square patches moved together. Default: "
        "ceil(shorter side / 16), 1 pixel on 8x8 digits.",
    )
    baseline: BaselineKind | None = Field(
        None, description="zeros | mean (of the slice) | blur | uniform; default per metric."
    )
    blur_sigma: float = Field(
        2.0, gt=0.0, le=1000.0, description="Gaussian blur sigma in pixels (baseline 'blur')."
    )
    order: Literal["value", "abs"] = Field(
        "value", description="Rank features by signed attribution (value) or by magnitude."
    )
    samples: int | None = Field(
        128, ge=1, le=10_000_000, description="First samples of the slice measured (None: all)."
    )
    max_batch: int = Field(
        256, ge=1, le=1_000_000, description="Perturbed inputs per forward pass of the model."
    )


@dataclass(frozen=True)
class CurveSetup:
    """What every batch of a perturbation curve shares: the feature groups, the steps, the
    baseline kind and the model its forward passes use."""

    groups: torch.Tensor
    n_groups: int
    steps: int
    kind: BaselineKind
    model: nn.Module


class PerturbationCurve(BatchMetric):
    """Base of deletion and insertion: area under the target-probability curve.

    Per batch: the probability curves by attribution and in the random order, ``(B, steps
    + 1)`` each; ``finish`` takes their areas and means.
    """

    Params = CurveParams
    needs: ClassVar[tuple[str, ...]] = ("model forward passes", "a baseline")
    #: False: move from the input to the baseline (deletion); True: the reverse.
    reveal: ClassVar[bool] = False
    #: Baseline kind per modality when the params give none.
    default_baseline: ClassVar[dict[str, BaselineKind]] = {"image": "zeros", "tabular": "zeros"}

    @classmethod
    def input_issues(
        cls, params: Any, modality: str, input_shape: tuple[int, ...]
    ) -> list[SpecIssue]:
        return issues_of(lambda: check_square("patch", params.patch, modality, input_shape))

    def check(self, ctx: MetricContext) -> None:
        super().check(ctx)
        check_square("patch", self.params.patch, ctx.context.modality, ctx.context.input_shape)

    def prepare(self, ctx: MetricContext) -> CurveSetup:
        p = self.params
        modality = ctx.context.modality
        groups, n_groups = feature_groups(ctx.context.input_shape, modality, p.patch)
        fast = ctx.context.inference
        return CurveSetup(
            groups=groups,
            n_groups=n_groups,
            steps=min(p.steps, n_groups),
            kind=p.baseline or self.default_baseline.get(modality, "zeros"),
            model=ctx.model if fast is None else fast.for_model(ctx.model),
        )

    def measure_batch(self, ctx: MetricContext, prepared: Any, batch: ExplainedBatch) -> PerSample:
        p, setup = self.params, prepared
        groups, n_groups = setup.groups, setup.n_groups
        scores = group_scores(batch.attributions, groups, n_groups)
        removed = ctx.context.removed
        baseline = (
            removed(batch.inputs)
            if removed is not None
            else make_baseline(
                setup.kind,
                batch.inputs,
                ctx.context.background,
                seed=ctx.context.seed,
                blur_sigma=p.blur_sigma,
            )
        )
        start, end = (baseline, batch.inputs) if self.reveal else (batch.inputs, baseline)
        order = scores.abs() if p.order == "abs" else scores
        live = counts = None
        if removed is not None:  # text: each sample's own tokens, first, in its steps
            live = group_scores((baseline != batch.inputs).double(), groups, n_groups) > 0
            order = order.masked_fill(~live, -torch.inf)
            counts = live.sum(dim=1)
            live = live.numpy()
        out: PerSample = {}
        for name, ranks in (
            ("explainer", attribution_ranks(order)),
            ("random", random_ranks(batch.positions, n_groups, ctx.context.seed, live)),
        ):
            out[name] = probability_curves(
                setup.model,
                start,
                end,
                ranks,
                groups,
                batch.targets,
                setup.steps,
                p.max_batch,
                counts,
            )
        return out

    def finish(self, ctx: MetricContext, values: PerSample) -> MetricOutput:
        p = self.params
        modality = ctx.context.modality
        _, n_groups = feature_groups(ctx.context.input_shape, modality, p.patch)
        steps = min(p.steps, n_groups)
        kind = p.baseline or self.default_baseline.get(modality, "zeros")
        curve, random_curve = values["explainer"], values["random"]
        auc, random_auc = area_under(curve), area_under(random_curve)
        gain = auc - random_auc if self.reveal else random_auc - auc
        unit = modality_of(modality).group_label(tuple(ctx.context.input_shape), p.patch)
        what = f"{n_groups} {unit}"
        if modality == "structured":  # each column at its reference
            what, kind = (
                f"{n_groups} columns",
                "reference (categorical: baseline id or marginal draw; dense: mean)",
            )
        elif ctx.context.removed is not None:  # text: steps are shares of each text's tokens
            what, kind = "the tokens of each text (padding kept)", "remove_with token"
        return MetricOutput(
            per_sample=auc,
            values={
                "auc": float(auc.mean()),
                "random_auc": float(random_auc.mean()),
                "gain": float(gain.mean()),
            },
            curves={
                "fraction": np.linspace(0, 1, steps + 1).round(6).tolist(),
                "explainer": curve.mean(axis=0).round(6).tolist(),
                "random": random_curve.mean(axis=0).round(6).tolist(),
            },
            note=(
                f"{len(auc)} samples; {what} "
                f"{'revealed on' if self.reveal else 'set to'} a '{kind}' baseline in "
                f"{steps} steps, by attribution ({p.order}) and in a random order seeded "
                f"with {ctx.context.seed}; AUC of the target's softmax probability."
            ),
        )
