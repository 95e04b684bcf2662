"""Sparseness, agreement, accuracy, stability and fidelity, and what every metric declares.

Known values: the Gini index of hand-made vectors, an explainer's agreement with itself,
the accuracy counted by hand, the stability of a deterministic explainer without noise.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from annotated_types import Ge, Gt, Le, Lt

sys.path.insert(0, str(Path(__file__).parent))

from metric_setup import Audit, Linear, digits_audit, measure

from auditor import registries
from auditor.metrics.base import ExplainerRun, MetricContext, NotApplicable
from auditor.metrics.fidelity import Fidelity
from auditor.metrics.similarity import gini, kendall, spearman, top_k_overlap
from auditor.metrics.stability import Stability


# -- sparseness ---------------------------------------------------------------------------
def test_gini_of_known_vectors() -> None:
    n = 10
    one_hot = np.zeros(n)
    one_hot[3] = -5.0  # magnitude only
    assert gini(one_hot) == pytest.approx((n - 1) / n)
    assert gini(np.full(n, 2.0)) == pytest.approx(0.0)
    # [0, 0, 1, 3]: 1 - 2 * (1/4 * 1.5/4 + 3/4 * 0.5/4) = 0.625
    assert gini(np.array([3.0, 0.0, 1.0, 0.0])) == pytest.approx(0.625)
    assert math.isnan(gini(np.zeros(4)))


def test_sparseness_per_sample(digits: Audit, tmp_path: Path) -> None:
    out = measure("sparseness", digits.ctx(digits.runs["integrated_gradients"]))
    attributions = np.asarray(digits.runs["integrated_gradients"].attributions)
    assert out.per_sample.shape == (48,)
    assert out.per_sample[5] == pytest.approx(gini(attributions[5]))
    assert out.per_sample.min() > 0 and out.per_sample.max() < 63 / 64
    assert out.note == "48 samples; Gini index over every attribution element."
    # IG concentrates on the strokes (zero on blank pixels): sparser than the gradient.
    saliency = measure("sparseness", digits.ctx(digits.runs["saliency"]))
    assert out.per_sample.mean() > saliency.per_sample.mean()


# -- agreement ----------------------------------------------------------------------------
def context_with(audit: Audit, *ids: str) -> MetricContext:
    ctx = audit.ctx()
    ctx.explainers = {i: audit.runs[i] for i in ids}
    return ctx


def test_an_explainer_agrees_with_itself(digits: Audit) -> None:
    run = digits.runs["integrated_gradients"]
    twin = ExplainerRun(**{**vars(run), "id": "twin"})
    ctx = context_with(digits, "integrated_gradients", "occlusion")
    ctx.explainers["twin"] = twin
    out = measure("agreement", ctx, samples=16, top_k=5)
    matrix = out.matrix
    assert matrix is not None
    assert matrix["labels"] == ["integrated_gradients", "occlusion", "twin"]
    assert matrix["kendall"][0][2] == matrix["kendall"][2][0] == 1.0
    assert matrix["topk"][0][2] == 1.0
    assert [matrix["kendall"][i][i] for i in range(3)] == [1.0, 1.0, 1.0]
    assert 0.3 < matrix["kendall"][0][1] < 1.0  # IG and occlusion agree, not perfectly
    assert matrix["k"] == 5
    assert out.per_sample.shape == (16,)
    json.dumps(matrix, allow_nan=False)


def test_agreement_values_are_means_over_samples(digits: Audit) -> None:
    out = measure("agreement", context_with(digits, "saliency", "guided_backprop"), samples=4)
    a = np.abs(np.asarray(digits.runs["saliency"].attributions[:4])).mean(axis=1)
    b = np.abs(np.asarray(digits.runs["guided_backprop"].attributions[:4])).mean(axis=1)
    taus = [kendall(a[i], b[i]) for i in range(4)]
    tops = [top_k_overlap(a[i], b[i], 7) for i in range(4)]  # ceil(64 / 10)
    assert out.matrix is not None
    assert out.matrix["kendall"][0][1] == pytest.approx(np.mean(taus), abs=1e-6)
    assert out.values["mean_topk"] == pytest.approx(np.mean(tops))
    np.testing.assert_allclose(out.per_sample, taus)


def test_agreement_needs_two_explainers(digits: Audit) -> None:
    with pytest.raises(NotApplicable, match="two or more local explainers; this run has 1"):
        measure("agreement", context_with(digits, "saliency"))


def test_top_k_overlap_and_ranks() -> None:
    a = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    assert top_k_overlap(a, a[::-1], 2) == 0.0
    assert top_k_overlap(a, np.array([4.0, 5.0, 0.0, 0.0, 3.0]), 2) == 1.0
    assert kendall(a, a[::-1]) == pytest.approx(-1.0)
    assert spearman(a, a**2) == pytest.approx(1.0)
    assert math.isnan(spearman(a, np.ones(5)))


# -- accuracy -----------------------------------------------------------------------------
def test_accuracy_is_the_hand_count(digits: Audit) -> None:
    out = measure("accuracy", digits.ctx())
    predicted = digits.model(digits.inputs).argmax(1).numpy()
    labels = digits.dataset.labels
    correct = sum(int(p == y) for p, y in zip(predicted, labels, strict=True))
    assert out.per_sample.sum() == correct
    assert out.values["value"] == correct / 48
    for c in np.unique(labels):
        mask = labels == c
        hand = int((predicted[mask] == c).sum()) / int(mask.sum())
        assert out.values[f"per_class_accuracy.{c}"] == hand
    assert out.note.startswith(f"{correct} of 48 samples classified correctly")


def test_accuracy_with_wrong_labels(tmp_path: Path) -> None:
    inputs = torch.eye(6)[:4]
    audit = Audit(Linear(6, 3).eval(), inputs, np.array([0, 0, 1, 2]), tmp_path, modality="tabular")
    predicted = audit.predictions.predicted
    out = measure("accuracy", audit.ctx())
    assert out.per_sample.tolist() == (predicted == np.array([0, 0, 1, 2])).astype(float).tolist()
    assert set(out.values) == {
        "value",
        "per_class_accuracy.0",
        "per_class_accuracy.1",
        "per_class_accuracy.2",
    }


# -- stability ----------------------------------------------------------------------------
def test_stability_without_noise_is_one_and_falls_with_noise(digits: Audit) -> None:
    ctx = digits.ctx(digits.runs["integrated_gradients"])
    exact = measure("stability", ctx, samples=8, sigma=0.0)
    np.testing.assert_allclose(exact.per_sample, 1.0, atol=1e-6)
    assert "seed_similarity" not in exact.values  # IG with a zero baseline is deterministic
    small = measure("stability", ctx, samples=8, sigma=0.02)
    large = measure("stability", ctx, samples=8, sigma=0.5)
    assert 0.5 < small.values["noise_similarity"] < 1.0
    assert large.values["noise_similarity"] < small.values["noise_similarity"]
    cosine = measure("stability", ctx, samples=8, similarity="cosine")
    assert 0.5 < cosine.values["noise_similarity"] <= 1.0


def test_stability_compares_seeds_of_stochastic_explainers(tmp_path: Path) -> None:
    audit = digits_audit(tmp_path, n=4)
    run = audit.explain("smoothgrad", {"nt_samples": 4})
    out = measure("stability", audit.ctx(run), samples=4)
    assert 0 < out.values["seed_similarity"] < 1
    assert "between seeds 0 and 1" in out.note
    never = measure("stability", audit.ctx(run), samples=4, seeds="never")
    assert "seed_similarity" not in never.values
    assert Stability.direction == "higher"


# -- fidelity -----------------------------------------------------------------------------
@dataclass
class GlobalRun(ExplainerRun):
    """An ExplainerRun carrying a global explainer's fidelity (the change asked of measure.py)."""

    fidelity: dict[str, float] = field(default_factory=dict)


def test_fidelity_of_a_global_surrogate(digits: Audit) -> None:
    cls = registries.explainers.get("surrogate_tree")
    params = cls.Params()
    explanation = cls(digits.model, params, digits.context).explain_global(
        digits.inputs, digits.predictions
    )
    run = GlobalRun(
        id="tree",
        type="surrogate_tree",
        cls=cls,
        params=params,
        attributions=np.empty((0, 1, 8, 8), np.float32),
        fidelity=explanation.fidelity,
    )
    metric = Fidelity(Fidelity.Params())
    assert metric.applies_to(run, "image")
    assert not metric.applies_to(digits.runs["saliency"], "image")
    out = measure("fidelity", digits.ctx(run))
    assert out.per_sample is None
    assert out.values["value"] == explanation.fidelity["accuracy"]
    assert out.values["train_accuracy"] == explanation.fidelity["train_accuracy"]
    assert (
        out.note == "Held-out accuracy on the model's predictions, measured when the "
        "surrogate was fitted on the slice."
    )


def test_fidelity_of_lime_is_its_local_r2(tmp_path: Path) -> None:
    torch.manual_seed(0)
    audit = Audit(Linear(6, 3).eval(), torch.randn(8, 6), np.zeros(8), tmp_path, modality="tabular")
    run = audit.explain("lime", {"n_samples": 64, "alpha": 0.0})
    out = measure("fidelity", audit.ctx(run))
    np.testing.assert_allclose(out.per_sample, run.stats["r2"])
    assert out.per_sample.min() > 0.999  # a linear model is fitted exactly


def test_fidelity_without_recorded_fidelity_is_not_applicable(digits: Audit) -> None:
    cls = registries.explainers.get("surrogate_linear")
    run = ExplainerRun(
        id="linear",
        type="surrogate_linear",
        cls=cls,
        params=cls.Params(),
        attributions=np.empty((0, 1, 8, 8), np.float32),
    )
    with pytest.raises(NotApplicable, match="linear did not record its held-out fidelity 'r2'"):
        measure("fidelity", digits.ctx(run))


# -- what every metric declares -----------------------------------------------------------
@pytest.mark.parametrize("name", registries.metrics.names())
def test_every_metric_declares_itself(name: str) -> None:
    cls = registries.metrics.get(name)
    assert cls.name == name
    assert cls.direction in ("higher", "lower")
    assert cls.scope in ("explainer", "cross", "model")
    assert cls.modalities <= {"image", "tabular", "text", "structured"}
    doc = inspect.getdoc(inspect.getmodule(cls)) or ""
    assert "http" in doc or name == "accuracy", f"{name}: cite the paper with a link"
    assert cls.summary()
    for key, info in cls.Params.model_fields.items():
        assert info.description, f"{name}.{key} has no description"
        numeric = typing.get_args(info.annotation) or (info.annotation,)
        if int in numeric or float in numeric:
            bounds = {type(m) for m in info.metadata}
            assert bounds & {Ge, Gt} and bounds & {Le, Lt}, f"{name}.{key} is unbounded"
    cls.Params()  # every param has a default
