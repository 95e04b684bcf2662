"""The torch model as a fitted scikit-learn classifier, for ``permutation_importance``.

Its own module because it subclasses scikit-learn's estimator classes: importing it imports
scikit-learn, which commands that only read specs (``auditor validate``) do without.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from auditor.explainers.permutation_importance import assemble


class SourcedModel(ClassifierMixin, BaseEstimator):
    """The torch model as a fitted scikit-learn classifier of "source" tables.

    A row of the table it predicts gives, for every feature, the number of the sample in
    ``inputs`` that the feature's elements are copied from.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        element_features: np.ndarray,
        n_classes: int,
        batch_size: int = 256,
    ) -> None:
        self.model = model
        self.inputs = inputs
        self.element_features = element_features
        self.n_classes = n_classes
        self.batch_size = batch_size

    def fit(self, sources: np.ndarray, y: np.ndarray | None = None) -> SourcedModel:
        """Nothing to learn: the model is trained already; scikit-learn's scorers want classes_."""
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict(self, sources: np.ndarray) -> np.ndarray:
        """The model's predicted class for every assembled input."""
        rows = np.asarray(sources, dtype=np.int64)
        out = []
        with torch.no_grad():
            for start in range(0, len(rows), self.batch_size):
                block = rows[start : start + self.batch_size]
                logits = self.model(assemble(self.inputs, self.element_features, block))
                out.append(logits.argmax(dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
