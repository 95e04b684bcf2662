"""KernelSHAP: Shapley values of tabular features by weighted linear regression on coalitions.

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874. The estimator is shap's ``KernelExplainer``'s, replicated
in ``auditor.explainers.kernel_shap_engine`` (the same coalitions, weights and constrained
least squares, the same values within float error) but run for a whole batch at once: the
model sees rows of many samples per call and one regression solves every sample. The
background is summarized by ``shap.kmeans`` (weighted by cluster size) or a seeded sample;
on text each sample's reference is the sample with its tokens removed. Each sample is
explained with the same seeded coalitions, independent of the batch it came in. Recorded
per sample: the gap between the sum of attributions and ``f(x) - E[f(background)]``
(``convergence_delta``) and the coalitions evaluated (``coalitions``, the budget).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import nn

from auditor.explainers.base import ExplainContext, Explainer
from auditor.explainers.kernel_shap_engine import (
    KernelShapValues,
    default_batch_rows,
    kernel_shap_values,
)
from auditor.explainers.shap_support import background_sample, completeness_gap
from auditor.plugin import Params


class KernelShapParams(Params):
    n_background: int = Field(20, ge=1, le=10_000, description="Size of the background summary.")
    summary: Literal["kmeans", "sample"] = Field(
        "kmeans", description="Summarize the background by k-means centres or a seeded sample."
    )
    nsamples: int | None = Field(
        None,
        ge=2,
        le=1_000_000,
        description="Coalitions evaluated per sample (default: shap's 2 * features + 2048 up "
        "to 64 features, max(2176, 4 * features) above; all 2**features - 2 when fewer).",
    )
    max_features: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Keep only this many features by L1 selection (default: all).",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="Rows per forward pass of the model (default: 4096 for text; for "
        "tabular rows as many as hold 2**24 values, between 4096 and 65536).",
    )


class KernelShap(Explainer):
    """Batched KernelSHAP on the target output (Lundberg and Lee 2017; shap's estimator)."""

    name: ClassVar[str] = "kernel_shap"
    uses_background = True
    stats = ("convergence_delta", "coalitions")
    Params = KernelShapParams
    modalities = frozenset({"tabular", "text", "structured"})

    def __init__(self, model: nn.Module, params: BaseModel, context: ExplainContext) -> None:
        super().__init__(model, params, context)
        #: The background summary per input shape: k-means runs once, not once per batch.
        self._summaries: dict[tuple[int, ...], Any] = {}

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        groups = self.context.groups  # data.groups: each group (unit) is one player
        result = self.player_values(inputs, targets, None if groups is None else groups.as_lists())
        for note in result.warnings:
            warnings.warn(f"kernel_shap: {note}", RuntimeWarning, stacklevel=2)
        values = torch.as_tensor(result.values, dtype=torch.float32)
        if groups is not None:  # a group's value split evenly over its columns
            values = groups.spread(values)
        attributions = values.reshape(inputs.shape)
        expected = torch.as_tensor(result.expected, dtype=torch.float32)
        self.record(
            convergence_delta=completeness_gap(self.model, inputs, targets, attributions, expected),
            coalitions=result.coalitions,
        )
        return attributions

    @torch.no_grad()
    def player_values(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        groups: Sequence[Sequence[int]] | None = None,
    ) -> KernelShapValues:
        """KernelSHAP values of each feature, or of each group of flattened feature indices.

        ``groups`` (lists of indices into a flattened sample, each index in exactly one)
        makes each group one player. Values are ``(N, groups)``.
        """
        p = self.params
        shape = tuple(inputs.shape[1:])
        rows = inputs.reshape(len(inputs), -1).numpy().astype(np.float64)
        removed = self.context.removed
        weights = None
        if removed is None:
            if shape not in self._summaries:
                self._summaries[shape] = self.background_summary(shape)
            summary = self._summaries[shape]
            background = np.asarray(getattr(summary, "data", summary), dtype=np.float64)
            weights = getattr(summary, "weights", None)
        else:
            # Text: a token is integrated out over the one text with it removed (shap's Text
            # masker), not over other texts' tokens at the same position. Structured: over
            # the sample's own removed copies (an id column's marginal draws, never k-means
            # centres of ids), several when a column is removed by drawing from its marginal.
            draws = getattr(self.context.embedding, "draws", None)
            references = draws(inputs) if draws is not None else removed(inputs)[:, None]
            background = references.reshape(len(inputs), references.shape[1], -1)
            background = background.numpy().astype(np.float64)
        model, chosen = self.model, torch.as_tensor(targets, dtype=torch.long)

        def target_output(batch: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
            out = model(batch.reshape(-1, *shape))
            return out[torch.arange(len(batch)), chosen[owner]]

        return kernel_shap_values(
            target_output,
            rows,
            background,
            weights=weights,
            nsamples=p.nsamples,
            seed=self.context.seed,
            groups=groups,
            max_features=p.max_features,
            batch_size=p.batch_size or default_batch_rows(rows.shape[1], removed is not None),
        )

    def background_summary(self, shape: tuple[int, ...]) -> Any:
        """The background rows shap integrates features out over."""
        import shap

        p = self.params
        background = background_sample(self.context, 1_000_000, self.name)
        rows = background.reshape(len(background), -1).numpy().astype(np.float64)
        if len(rows) <= p.n_background:
            return rows
        if p.summary == "kmeans":
            return shap.kmeans(rows, p.n_background)
        generator = torch.Generator().manual_seed(self.context.seed)
        keep = torch.randperm(len(rows), generator=generator)[: p.n_background].sort().values
        return rows[keep.numpy()]
