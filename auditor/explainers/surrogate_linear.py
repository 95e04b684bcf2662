"""Global linear surrogate: a linear regression of the model's target logit on the inputs.

The "explain a model by a simpler one" method (global surrogate, model extraction):
Bastani, Kim, Bastani 2017, "Interpretability via Model Extraction", FAT/ML,
https://arxiv.org/abs/1706.09773; after Craven & Shavlik 1996, "Extracting
Tree-Structured Representations of Trained Networks", NeurIPS 8.
Engine: ``sklearn.linear_model.LinearRegression`` (``Ridge`` when ``alpha > 0``).

Features are the tabular columns, or for images the mean of each channel over a pooled grid
(``auditor.explainers.grid``). Fidelity is R^2 on a held-out part of the slice, split with
the run's seed. Importance is the standardized coefficient ``|coefficient| * std(feature)``
(feature std on the training part): the change of the logit for a one-std change of the
feature, comparable across features of different scales.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from auditor.errors import SpecError, SpecIssue
from auditor.explainers.base import GlobalExplanation, Predictions, issues_of
from auditor.explainers.grid import (
    GRID_DESCRIPTION,
    GridExplainer,
    GridSide,
    holdout_split,
)
from auditor.plugin import Params


class SurrogateLinearParams(Params):
    grid: tuple[GridSide, GridSide] = Field((4, 4), description=GRID_DESCRIPTION)
    test_fraction: float = Field(
        0.25, gt=0.0, lt=1.0, description="Part of the slice held out to measure fidelity (R^2)."
    )
    alpha: float = Field(
        0.0, ge=0.0, le=1e6, description="Ridge penalty; 0 is ordinary least squares."
    )
    class_index: int | None = Field(
        None,
        ge=0,
        le=1_000_000,
        description="Class whose logit is regressed; default: each sample's target class.",
    )


class SurrogateLinear(GridExplainer):
    """Linear regression of the target logit on the features, with held-out R^2."""

    name: ClassVar[str] = "surrogate_linear"
    fidelity_keys = ("r2", "train_r2")
    Params = SurrogateLinearParams

    def explain_global(self, inputs: torch.Tensor, predictions: Predictions) -> GlobalExplanation:
        from sklearn.linear_model import LinearRegression, Ridge
        from sklearn.metrics import r2_score

        p = self.params
        features = self.grid_features(inputs)
        y, output = self._response(predictions)
        train, test = holdout_split(len(y), p.test_fraction, self.context.seed)
        x_train, x_test = features.table[train], features.table[test]
        fit = (Ridge(alpha=p.alpha) if p.alpha > 0 else LinearRegression()).fit(x_train, y[train])
        std = x_train.std(axis=0)
        standardized = fit.coef_ * std
        return GlobalExplanation(
            importance=np.abs(standardized),
            feature_names=features.names,
            fidelity={
                "r2": float(r2_score(y[test], fit.predict(x_test))),
                "train_r2": float(r2_score(y[train], fit.predict(x_train))),
            },
            extra={
                "output": output,
                "importance": "abs(coefficient) * std(feature), std on the training part",
                "coefficients": fit.coef_.tolist(),
                "intercept": float(fit.intercept_),
                "standardized_coefficients": standardized.tolist(),
                "feature_std": std.tolist(),
                "n_train": len(train),
                "n_test": len(test),
                "features": features.layout(),
            },
        )

    def _response(self, predictions: Predictions) -> tuple[np.ndarray, str]:
        """The regressed logit per sample and a sentence saying which one it is."""
        logits = np.asarray(predictions.logits, dtype=np.float64)
        k = self.params.class_index
        if k is None:
            targets = np.asarray(predictions.targets, dtype=np.int64)
            return logits[np.arange(len(logits)), targets], "logit of each sample's target class"
        check_class_index(k, logits.shape[1])
        return logits[:, k], f"logit of class {k}"

    @classmethod
    def model_issues(
        cls, params: Any, model: torch.nn.Module, input_shape: tuple[int, ...] | None
    ) -> list[SpecIssue]:
        """``class_index`` against the model's outputs, from one forward pass of a zero sample
        (the run's later stages report a model that cannot take one)."""
        k = params.class_index
        if k is None or input_shape is None:
            return []
        first = next(iter(model.parameters()), None)
        try:
            with torch.no_grad():
                out = model(
                    torch.zeros(1, *input_shape, device=None if first is None else first.device)
                )
        except Exception:
            return []
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            return []
        return issues_of(lambda: check_class_index(k, out.shape[1]))


def check_class_index(k: int, outputs: int) -> None:
    """A SpecError at ``params.class_index`` unless the model has an output ``k``."""
    if k >= outputs:
        raise SpecError.at(
            ("params", "class_index"),
            f"class_index {k} is out of range: the model has {outputs} outputs "
            f"(0 to {outputs - 1})",
        )
