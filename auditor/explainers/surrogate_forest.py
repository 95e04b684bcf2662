"""Global random-forest surrogate: a forest fitted to the model's predicted classes.

Breiman 2001, "Random Forests", Machine Learning 45(1):5-32,
https://doi.org/10.1023/A:1010933404324; used as a global surrogate (model extraction,
Bastani, Kim, Bastani 2017, https://arxiv.org/abs/1706.09773). Engine:
``sklearn.ensemble.RandomForestClassifier`` and ``sklearn.inspection.permutation_importance``.

Features are the tabular columns, or for images the mean of each channel over a pooled grid
(``auditor.explainers.grid``). Fidelity is the forest's accuracy against the model's own
predictions on a held-out part of the slice. Two importances are kept: the impurity
decrease (mean over trees, spread = std over trees) and the permutation importance of the
forest on the held-out part (mean and std over repeats); ``importance`` picks the ranking.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field

from auditor.explainers.base import GlobalExplanation, Predictions
from auditor.explainers.grid import (
    GRID_DESCRIPTION,
    GridExplainer,
    GridSide,
    holdout_split,
)
from auditor.plugin import Params


class SurrogateForestParams(Params):
    grid: tuple[GridSide, GridSide] = Field((4, 4), description=GRID_DESCRIPTION)
    test_fraction: float = Field(
        0.25, gt=0.0, lt=1.0, description="Part of the slice held out to measure fidelity."
    )
    n_estimators: int = Field(100, ge=1, le=10_000, description="Trees in the forest.")
    max_depth: int | None = Field(
        None, ge=1, le=64, description="Deepest split level (None: grow until leaves are pure)."
    )
    min_samples_leaf: int = Field(
        1, ge=1, le=100_000, description="Fewest training samples in a leaf."
    )
    n_repeats: int = Field(
        5, ge=1, le=1000, description="Shuffles per feature for the permutation importance."
    )
    importance: Literal["permutation", "impurity"] = Field(
        "permutation", description="Which importance ranks the features (both are kept)."
    )


class SurrogateForest(GridExplainer):
    """Random forest mimicking the model's predicted classes, with two importances."""

    name: ClassVar[str] = "surrogate_forest"
    fidelity_keys = ("accuracy", "train_accuracy")
    Params = SurrogateForestParams

    def explain_global(self, inputs: torch.Tensor, predictions: Predictions) -> GlobalExplanation:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.inspection import permutation_importance

        p = self.params
        seed = self.context.seed
        features = self.grid_features(inputs)
        y = np.asarray(predictions.predicted, dtype=np.int64)
        train, test = holdout_split(len(y), p.test_fraction, seed)
        x_train, x_test = features.table[train], features.table[test]
        forest = RandomForestClassifier(
            n_estimators=p.n_estimators,
            max_depth=p.max_depth,
            min_samples_leaf=p.min_samples_leaf,
            random_state=seed,
        ).fit(x_train, y[train])
        impurity = forest.feature_importances_.astype(np.float64)
        impurity_std = np.std([t.feature_importances_ for t in forest.estimators_], axis=0)
        permuted = permutation_importance(
            forest, x_test, y[test], n_repeats=p.n_repeats, random_state=seed
        )
        chosen = p.importance == "permutation"
        return GlobalExplanation(
            importance=permuted.importances_mean if chosen else impurity,
            feature_names=features.names,
            spread=permuted.importances_std if chosen else impurity_std,
            fidelity={
                "accuracy": float(forest.score(x_test, y[test])),
                "train_accuracy": float(forest.score(x_train, y[train])),
            },
            extra={
                "importance": (
                    "permutation importance of the forest on the held-out part (accuracy drop)"
                    if chosen
                    else "impurity decrease (mean over trees)"
                ),
                "impurity_importance": impurity.tolist(),
                "impurity_importance_std": impurity_std.tolist(),
                "permutation_importance": permuted.importances_mean.tolist(),
                "permutation_importance_std": permuted.importances_std.tolist(),
                "n_estimators": p.n_estimators,
                "n_train": len(train),
                "n_test": len(test),
                "features": features.layout(),
            },
        )
