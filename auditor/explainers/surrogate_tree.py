"""Global decision-tree surrogate: a tree fitted to the model's predicted classes.

Global surrogate by model extraction: Bastani, Kim, Bastani 2017, "Interpretability via
Model Extraction", FAT/ML, https://arxiv.org/abs/1706.09773; after Craven & Shavlik 1996,
"Extracting Tree-Structured Representations of Trained Networks", NeurIPS 8.
Engine: ``sklearn.tree.DecisionTreeClassifier`` (CART, Breiman et al. 1984).

Features are the tabular columns, or for images the mean of each channel over a pooled grid
(``auditor.explainers.grid``). Fidelity is the tree's accuracy against the model's own
predictions on a held-out part of the slice. Importance is the tree's impurity decrease
per feature. The fitted tree is kept in ``extra["tree"]`` as plain lists (one entry per
node, the layout of ``sklearn.tree.Tree``) and as ``export_text``, for drawing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

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

if TYPE_CHECKING:
    from sklearn.tree import DecisionTreeClassifier


class SurrogateTreeParams(Params):
    grid: tuple[GridSide, GridSide] = Field((4, 4), description=GRID_DESCRIPTION)
    test_fraction: float = Field(
        0.25, gt=0.0, lt=1.0, description="Part of the slice held out to measure fidelity."
    )
    max_depth: int | None = Field(
        6, ge=1, le=64, description="Deepest split level (None: grow until leaves are pure)."
    )
    min_samples_leaf: int = Field(
        5, ge=1, le=100_000, description="Fewest training samples in a leaf."
    )
    criterion: Literal["gini", "entropy", "log_loss"] = Field(
        "gini", description="Split quality measure."
    )


class SurrogateTree(GridExplainer):
    """Decision tree mimicking the model's predicted classes, with held-out fidelity."""

    name: ClassVar[str] = "surrogate_tree"
    fidelity_keys = ("accuracy", "train_accuracy")
    Params = SurrogateTreeParams

    def explain_global(self, inputs: torch.Tensor, predictions: Predictions) -> GlobalExplanation:
        from sklearn.tree import DecisionTreeClassifier, export_text

        p = self.params
        features = self.grid_features(inputs)
        y = np.asarray(predictions.predicted, dtype=np.int64)
        train, test = holdout_split(len(y), p.test_fraction, self.context.seed)
        tree = DecisionTreeClassifier(
            max_depth=p.max_depth,
            min_samples_leaf=p.min_samples_leaf,
            criterion=p.criterion,
            random_state=self.context.seed,
        ).fit(features.table[train], y[train])
        classes = [int(c) for c in tree.classes_]
        class_names = [self._class_name(c) for c in classes]
        return GlobalExplanation(
            importance=tree.feature_importances_.astype(np.float64),
            feature_names=features.names,
            fidelity={
                "accuracy": float(tree.score(features.table[test], y[test])),
                "train_accuracy": float(tree.score(features.table[train], y[train])),
            },
            extra={
                "importance": "impurity decrease (scikit-learn feature_importances_)",
                "depth": int(tree.get_depth()),
                "leaves": int(tree.get_n_leaves()),
                "classes": classes,
                "class_names": class_names,
                "tree": tree_structure(tree, features.names, class_names),
                "text": export_text(
                    tree,
                    feature_names=features.names,
                    class_names=class_names,
                    max_depth=max(1, tree.get_depth()),
                    decimals=4,
                ),
                "n_train": len(train),
                "n_test": len(test),
                "features": features.layout(),
            },
        )

    def _class_name(self, k: int) -> str:
        names = self.context.class_names
        return str(names[k]) if k < len(names) else str(k)


def tree_structure(
    tree: DecisionTreeClassifier, feature_names: list[str], class_names: list[str]
) -> dict[str, Any]:
    """The fitted tree as JSON-serializable lists, one entry per node (node 0 is the root).

    ``children_left``/``children_right`` are node numbers, -1 at leaves; ``feature`` is the
    feature number (None at leaves) and ``feature_name`` its name; a sample goes left when
    its feature value is ``<= threshold``. ``value`` holds the fraction of the node's
    training samples in each of ``classes`` (the model's class numbers), ``class`` and
    ``class_name`` the majority.
    """
    t = tree.tree_
    leaf = t.children_left == -1
    value = t.value[:, 0, :]
    # scikit-learn >= 1.4 stores fractions, older versions counts: normalise either way.
    value = value / value.sum(axis=1, keepdims=True)
    majority = value.argmax(axis=1)
    return {
        "children_left": t.children_left.astype(int).tolist(),
        "children_right": t.children_right.astype(int).tolist(),
        "feature": [
            None if is_leaf else int(f) for f, is_leaf in zip(t.feature, leaf, strict=True)
        ],
        "feature_name": [
            None if is_leaf else feature_names[int(f)]
            for f, is_leaf in zip(t.feature, leaf, strict=True)
        ],
        "threshold": [
            None if is_leaf else float(v) for v, is_leaf in zip(t.threshold, leaf, strict=True)
        ],
        "n_samples": t.n_node_samples.astype(int).tolist(),
        "impurity": t.impurity.astype(float).tolist(),
        "value": value.astype(float).tolist(),
        "class": [int(tree.classes_[m]) for m in majority],
        "class_name": [class_names[m] for m in majority],
    }
