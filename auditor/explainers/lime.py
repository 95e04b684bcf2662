"""LIME: a weighted linear model fitted to the target output around each sample.

Ribeiro, Singh, Guestrin 2016, "'Why Should I Trust You?': Explaining the Predictions of
Any Classifier", https://arxiv.org/abs/1602.04938. Engine: scikit-learn's ``Ridge`` (or
``LinearRegression`` when ``alpha`` is 0) on Captum-like perturbations. Captum's ``Lime``
does not expose its fit, so the local model is fitted here to keep each fit's R^2
(``sample_stats["r2"]``, weighted by the kernel, on the perturbations).

Interpretable features: tabular features one by one; for images square grid cells of
``cell`` pixels over all channels (the same grid as ``feature_ablation``; no superpixels).
Perturbations, as Captum's default: each feature kept with probability 1/2, removed ones
set to ``baseline``; the unperturbed sample is the first draw. Weights: Captum's
exponential kernel ``exp(-d^2 / (2 kernel_width^2))`` on the cosine distance between the
binary keep-vector and all-ones (LIME's interpretable space, defined for zero inputs).
Each pixel or feature receives its feature's coefficient. Draws come from a generator
seeded by the run's seed and the sample's bytes, so a result does not depend on the batch.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field

from auditor.errors import SpecIssue
from auditor.explainers.base import Explainer, issues_of, sample_seed
from auditor.explainers.feature_ablation import feature_mask
from auditor.explainers.grid import check_square
from auditor.explainers.passes import rows_per_pass
from auditor.plugin import Params


class LimeParams(Params):
    n_samples: int = Field(256, ge=2, le=1_000_000, description="Perturbations per sample.")
    kernel_width: float = Field(
        0.25, gt=0.0, le=1e6, description="Width of the exponential kernel on cosine distance."
    )
    alpha: float = Field(
        1.0, ge=0.0, le=1e6, description="Ridge penalty of the local model (0: least squares)."
    )
    cell: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Images: side in pixels of the grid cells (the features). Default: an "
        "8x8 grid, ceil(side / 8).",
    )
    baseline: float = Field(0.0, ge=-1e9, le=1e9, description="Value a removed feature is set to.")
    output: Literal["logit", "probability"] = Field(
        "logit", description="What the local model fits: the target's logit or its softmax."
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Perturbed inputs per forward pass (default: as many as fit in 2**22 "
        "input elements). Results do not depend on it.",
    )


class Lime(Explainer):
    """A kernel-weighted local linear model of the target output (Ribeiro et al. 2016)."""

    name: ClassVar[str] = "lime"
    stats = ("r2",)
    Params = LimeParams

    @classmethod
    def input_issues(
        cls, params: BaseModel, modality: str, input_shape: tuple[int, ...]
    ) -> list[SpecIssue]:
        return issues_of(lambda: check_square("cell", params.cell, modality, input_shape))  # type: ignore[attr-defined]

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mask = feature_mask(tuple(inputs.shape[1:]), self.context.modality, self.params.cell)
        groups = self.context.groups  # data.groups: one interpretable feature per group
        if groups is not None:
            mask = groups.mask()
        rows, r2 = [], []
        for sample, target in zip(inputs, targets.tolist(), strict=True):
            coef, score = self._fit_one(sample, target, mask)
            rows.append(torch.as_tensor(coef, dtype=torch.float32)[mask])
            r2.append(score)
        self.record(r2=np.asarray(r2))
        out = torch.stack(rows)
        return out if groups is None else groups.per_column(out)  # a group's split evenly

    def _fit_one(
        self, sample: torch.Tensor, target: int, mask: torch.Tensor
    ) -> tuple[np.ndarray, float]:
        """Coefficients per interpretable feature and the weighted R^2 of the fit."""
        p = self.params
        n_features = int(mask.max()) + 1
        rng = np.random.default_rng(sample_seed(self.context.seed, sample))
        if self.context.removed is None:
            keep = rng.random((p.n_samples, n_features)) < 0.5
            keep[0] = True
            return self._fit(sample, target, mask, keep)
        # Text: features whose removal changes nothing (padding) are not sampled; they stay
        # present and get 0, so the coalitions and the kernel are over the real tokens.
        changes = (self.context.removed(sample) != sample).reshape(-1)
        live = np.zeros(n_features, dtype=bool)
        live[np.unique(mask.reshape(-1)[changes].numpy())] = True
        keep = np.ones((p.n_samples, n_features), dtype=bool)
        keep[:, live] = rng.random((p.n_samples, int(live.sum()))) < 0.5
        keep[0] = True
        coef, score = self._fit(sample, target, mask, keep, live)
        full = np.zeros(n_features)
        full[live] = coef
        return full, score

    def _fit(
        self,
        sample: torch.Tensor,
        target: int,
        mask: torch.Tensor,
        keep: np.ndarray,
        live: np.ndarray | None = None,
    ) -> tuple[np.ndarray, float]:
        """A weighted linear fit of the outputs on the coalitions ``keep`` (over the
        ``live`` features only, when given)."""
        from sklearn.linear_model import LinearRegression, Ridge

        p = self.params
        outputs = self._outputs(sample, target, torch.as_tensor(keep)[:, mask])
        design = keep if live is None else keep[:, live]
        kept = design.sum(axis=1)
        distance = 1.0 - np.sqrt(kept / max(design.shape[1], 1))  # cosine distance to all-ones
        weights = np.exp(-(distance**2) / (2 * p.kernel_width**2))
        design = design.astype(np.float64)
        local = LinearRegression() if p.alpha == 0 else Ridge(alpha=p.alpha)
        local.fit(design, outputs, sample_weight=weights)
        return local.coef_, float(local.score(design, outputs, sample_weight=weights))

    @torch.no_grad()
    def _outputs(self, sample: torch.Tensor, target: int, keep: torch.Tensor) -> np.ndarray:
        """The target's output on each perturbed copy (``keep`` has the sample's shape)."""
        p = self.params
        values = []
        removed = self.context.removed
        absent = torch.full_like(sample, p.baseline) if removed is None else removed(sample)
        draws = getattr(self.context.embedding, "draws", None)  # structured: marginal draws
        several = None if draws is None else draws(sample.reshape(1, -1))[0]
        done = 0
        for chunk in keep.split(p.batch_size or rows_per_pass(self.model, sample.unsqueeze(0))):
            if several is not None:  # perturbed copy j removes to draw j mod k
                which = (done + torch.arange(len(chunk))) % len(several)
                absent = several[which].reshape(len(chunk), *sample.shape)
                done += len(chunk)
            perturbed = torch.where(chunk, sample, absent)
            out = self.forward_model(perturbed)
            if p.output == "probability":
                out = out.softmax(dim=1)
            values.append(out[:, target])
        return torch.cat(values).double().numpy()
