"""KernelSHAP: Shapley values of tabular features by weighted linear regression on coalitions.

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874. Engine: ``shap.KernelExplainer`` on a numpy function
of the target output only (one explainer per target class in the batch), with the
background summarized by ``shap.kmeans`` or a seeded sample. Each sample is explained
with the same seeded coalitions, independent of the batch it came in. The gap between
the sum of attributions and ``f(x) - E[f(background)]`` is kept per sample.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from auditor.explainers.base import Explainer
from auditor.explainers.shap_support import (
    background_sample,
    by_target,
    completeness_gap,
    numpy_seed,
)
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
        description="Coalitions evaluated per sample (default: shap's 2 * features + 2048).",
    )
    max_features: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Keep only this many features by L1 selection (default: all).",
    )
    batch_size: int = Field(
        4096, ge=1, le=10_000_000, description="Rows per forward pass of the model."
    )


class TargetFunction:
    """A numpy function of rows: the model's ``target`` output, evaluated in batches."""

    def __init__(self, model: nn.Module, target: int, shape: tuple[int, ...], batch: int):
        self.model, self.target, self.shape, self.batch = model, target, shape, batch

    @torch.no_grad()
    def __call__(self, rows: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(rows, dtype=np.float32)).reshape(-1, *self.shape)
        outs = [
            self.model(x[s : s + self.batch])[:, self.target] for s in range(0, len(x), self.batch)
        ]
        return torch.cat(outs).numpy().astype(np.float64)


class KernelShap(Explainer):
    """shap's KernelExplainer on the target output, for tabular data (Lundberg and Lee 2017)."""

    name: ClassVar[str] = "kernel_shap"
    uses_background = True
    stats = ("convergence_delta",)
    Params = KernelShapParams
    modalities = frozenset({"tabular", "text"})

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        import shap

        p = self.params
        shape = tuple(inputs.shape[1:])
        rows = inputs.reshape(len(inputs), -1).numpy().astype(np.float64)
        removed = self.context.removed
        # Text: a token is integrated out over the one text with it removed (shap's Text
        # masker), not over other texts' tokens at the same position.
        summary = self.background_summary(shape) if removed is None else None
        out = np.zeros_like(rows)
        expected = torch.zeros(len(inputs))
        options: dict[str, Any] = {"silent": True, "l1_reg": False}
        if p.nsamples is not None:
            options["nsamples"] = p.nsamples
        if p.max_features is not None:
            options["l1_reg"] = f"num_features({p.max_features})"
        for target, indices in by_target(targets):
            function = TargetFunction(self.model, target, shape, p.batch_size)
            explainer = shap.KernelExplainer(function, summary) if removed is None else None
            for i in indices.tolist():
                if removed is not None:
                    reference = removed(inputs[i : i + 1]).reshape(1, -1).numpy()
                    explainer = shap.KernelExplainer(function, reference.astype(np.float64))
                with numpy_seed(self.context.seed):
                    values = explainer.shap_values(rows[i : i + 1], **options)
                out[i] = np.asarray(values).reshape(-1)
                expected[i] = float(np.asarray(explainer.expected_value).reshape(-1)[0])
        attributions = torch.as_tensor(out, dtype=torch.float32).reshape(inputs.shape)
        self.record(
            convergence_delta=completeness_gap(self.model, inputs, targets, attributions, expected)
        )
        return attributions

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
