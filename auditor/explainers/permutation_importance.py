"""Permutation importance of the model itself: the score lost when one feature is shuffled.

Breiman 2001, "Random Forests", Machine Learning 45(1):5-32,
https://doi.org/10.1023/A:1010933404324; model-agnostic form: Fisher, Rudin, Dominici 2019,
"All Models are Wrong, but Many are Useful", JMLR 20(177), https://arxiv.org/abs/1801.01489.
Engine: ``sklearn.inspection.permutation_importance`` with the torch model wrapped as a
scikit-learn classifier.

Features are the tabular columns, or for images the cells of a grid per channel
(``auditor.explainers.grid``): a whole cell is moved from one image to another. The trick
that lets scikit-learn do the shuffling: the table it permutes holds, for every sample and
feature, the number of the sample that feature is taken from (row ``i`` is all ``i``);
the wrapped model assembles inputs from those numbers before predicting. With ``data.groups``
a group's columns share one number (the same row permutation) and the group's drop is split
evenly over its columns.
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
)
from auditor.plugin import Params

#: Added to the importance note with data.groups.
GROUPED = "; a group's columns are shuffled together, its drop split evenly over them"


class PermutationImportanceParams(Params):
    grid: tuple[GridSide, GridSide] = Field((4, 4), description=GRID_DESCRIPTION)
    n_repeats: int = Field(5, ge=1, le=1000, description="Shuffles per feature.")
    scoring: Literal["accuracy", "agreement"] = Field(
        "accuracy",
        description="accuracy: against the labels; agreement: with the model's own predictions.",
    )
    batch_size: int = Field(256, ge=1, le=1_000_000, description="Samples per forward pass.")


class PermutationImportance(GridExplainer):
    """Drop in the model's score when a feature (or image cell) is shuffled across samples."""

    name: ClassVar[str] = "permutation_importance"
    #: Permuting a token position across texts means nothing: tables and images only.
    modalities = frozenset({"image", "tabular", "structured"})
    Params = PermutationImportanceParams

    def explain_global(self, inputs: torch.Tensor, predictions: Predictions) -> GlobalExplanation:
        from sklearn.inspection import permutation_importance

        from auditor.explainers.sourced_model import SourcedModel  # imports scikit-learn

        p = self.params
        features = self.grid_features(inputs)
        groups = self.context.groups  # data.groups: a group's columns move together
        element_features = features.element_features if groups is None else groups.unit_of
        n_units = len(features.names) if groups is None else groups.n_units
        n = len(inputs)
        sources = np.repeat(np.arange(n)[:, None], n_units, axis=1)
        if p.scoring == "accuracy":
            y = np.asarray(predictions.labels, dtype=np.int64)
        else:
            y = np.asarray(predictions.predicted, dtype=np.int64)
        wrapped = SourcedModel(
            self.forward_model,
            inputs,
            element_features,
            predictions.logits.shape[1],
            p.batch_size,
        ).fit(sources, y)
        result = permutation_importance(
            wrapped,
            sources,
            y,
            scoring="accuracy",
            n_repeats=p.n_repeats,
            random_state=self.context.seed,
        )
        baseline = float((wrapped.predict(sources) == y).mean())
        importance, spread = result.importances_mean, result.importances_std
        if groups is not None:  # per column: each group's value split evenly over its columns
            importance = importance[groups.unit_of] / groups.sizes[groups.unit_of]
            spread = spread[groups.unit_of] / groups.sizes[groups.unit_of]
        return GlobalExplanation(
            importance=importance,
            feature_names=features.names,
            spread=spread,
            extra={
                "importance": f"drop in {p.scoring} when the feature is shuffled (mean of repeats)"
                + (GROUPED if groups is not None else ""),
                "scoring": p.scoring,
                "baseline_score": baseline,
                "importances": result.importances.tolist(),
                "n_repeats": p.n_repeats,
                "n_samples": n,
                "features": features.layout(),
            },
        )


def assemble(
    inputs: torch.Tensor, element_features: np.ndarray, sources: np.ndarray
) -> torch.Tensor:
    """Inputs whose feature ``f`` in row ``m`` is copied from sample ``sources[m, f]``.

    ``element_features`` gives the feature number of every element of a flattened input;
    the result has shape ``(len(sources), *inputs.shape[1:])``.
    """
    flat = inputs.detach().reshape(len(inputs), -1).to(torch.float32)
    owner = torch.as_tensor(element_features, dtype=torch.long)
    rows = torch.as_tensor(np.asarray(sources, dtype=np.int64))
    assembled = flat[rows[:, owner], torch.arange(flat.shape[1])]
    return assembled.reshape(len(rows), *inputs.shape[1:])
