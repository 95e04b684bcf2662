"""Gradient methods on structured data run at the embedding outputs (and the dense values):
equal to Captum's layer methods over the embedding layers and the dense input called
directly, complete, and refused for a categorical column without an embedding."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from tiny_rec import Rec, interactions

from auditor import registries
from auditor.data.csv_source import CsvDataSource, CsvParams
from auditor.errors import SpecError
from auditor.explainers.base import ExplainContext
from auditor.modalities.structured import StructuredInputs
from auditor.runner import background_samples
from auditor.spec.model import ExplainerEntry

BASELINE = {"user_id": "u3", "item_id": 1, "item_category": "books"}


class DenseNamed(nn.Module):
    """``Rec`` with its dense input passed through an identity layer Captum can attribute at."""

    def __init__(self) -> None:
        super().__init__()
        self.rec = Rec()
        self.dense_in = nn.Identity()

    def forward(self, user: torch.Tensor, item: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        return self.rec(user, item, self.dense_in(dense))


def prepared(tmp_path: Path, model: nn.Module, baseline: bool = True) -> tuple:
    interactions(tmp_path / "interactions.csv", n=40)
    inputs = {
        "user": {"columns": ["user_id"], "categorical": True},
        "item": {"columns": ["item_id", "item_category"], "categorical": True},
        "dense": {"columns": ["price", "age_days", "hour"]},
    }
    if baseline:
        inputs["user"]["baseline"] = BASELINE["user_id"]
        inputs["item"]["baseline"] = {k: BASELINE[k] for k in ("item_id", "item_category")}
    params = CsvParams.model_validate(
        {"path": tmp_path / "interactions.csv", "label": "clicked", "inputs": inputs}
    )
    dataset = CsvDataSource().load(params)
    prepared = StructuredInputs.build(dataset, model.eval())
    indices = torch.arange(len(dataset)).numpy()
    background = background_samples(dataset, indices, 0)
    bound = prepared.bind(background, 0)
    context = ExplainContext(
        modality="structured",
        input_shape=tuple(dataset.input_shape),
        background=background,
        feature_names=dataset.feature_names,
        embedding=bound.space,
        removed=bound.removed,
    )
    return dataset, bound, context


def explainer(name: str, feed: nn.Module, context: ExplainContext, **params: object) -> object:
    cls = registries.explainers.get(name)
    return cls(feed, cls.Params.model_validate(params), context)


def fields(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids = rows[:, :3].round().long()
    return ids[:, 0], ids[:, 1:3], rows[:, 3:6]


def reference_rows(dataset: object, rows: torch.Tensor) -> torch.Tensor:
    ref = rows.clone()
    ref[:, 0] = dataset.vocabularies["user_id"].index("u3")
    ref[:, 1] = 1
    ref[:, 2] = dataset.vocabularies["item_category"].index("books")
    ref[:, 3:] = 0.0
    return ref


def per_column(parts: list[torch.Tensor]) -> torch.Tensor:
    user, item, category, dense = parts
    summed = [p.sum(-1, keepdim=True) for p in (user, item, category)]
    return torch.cat([*summed, dense], dim=1)


def test_integrated_gradients_equal_captum_layer_ig_and_are_complete(tmp_path: Path) -> None:
    model = DenseNamed()
    dataset, bound, context = prepared(tmp_path, model)
    rows = dataset.get(torch.arange(40).numpy())
    targets = torch.ones(40, dtype=torch.long)
    ours = explainer("integrated_gradients", bound.feed, context, n_steps=64).explain(rows, targets)
    rec = model.rec
    layers = [rec.user_emb, rec.item_emb, rec.cat_emb, model.dense_in]
    captum = LayerIntegratedGradients(model, layers).attribute(
        fields(rows),
        baselines=fields(reference_rows(dataset, rows)),
        target=targets,
        n_steps=64,
    )
    expected = per_column(captum)
    assert ours.shape == (40, 6)
    assert torch.allclose(ours, expected, atol=1e-5, rtol=0)
    with torch.no_grad():
        f_x = model(*fields(rows))[:, 1]
        f_b = model(*fields(reference_rows(dataset, rows)))[:, 1]
        space_ref = bound.space.reference_outputs(bound.feed, rows)[:, 1]
    assert torch.allclose(space_ref, f_b, atol=1e-6)
    # ReLU kinks: 64 nodes leave up to 3% of f(x) - f(b) unexplained; 512 within 1%
    fine = explainer("integrated_gradients", bound.feed, context, n_steps=512).explain(
        rows, targets
    )
    error = (fine.sum(1) - (f_x - f_b)).abs() / (f_x - f_b).abs().clamp_min(1e-6)
    assert float(error.max()) < 0.01


@pytest.mark.parametrize("name", ["saliency", "input_x_gradient"])
def test_gradient_methods_equal_layer_gradient_x_activation(tmp_path: Path, name: str) -> None:
    model = DenseNamed()
    dataset, bound, context = prepared(tmp_path, model)
    rows = dataset.get(torch.arange(40).numpy())
    targets = torch.zeros(40, dtype=torch.long)
    ours = explainer(name, bound.feed, context).explain(rows, targets)
    rec = model.rec
    layers = [rec.user_emb, rec.item_emb, rec.cat_emb, model.dense_in]
    multiply = name == "input_x_gradient"
    parts = LayerGradientXActivation(model, layers, multiply_by_inputs=multiply).attribute(
        fields(rows), target=targets
    )
    if name == "saliency":  # |gradient| per element, summed over the embedding
        parts = [p.abs() for p in parts]
    assert torch.allclose(ours, per_column(parts), atol=1e-5, rtol=0)


def test_marginal_reference_is_the_mean_embedding_of_the_background(tmp_path: Path) -> None:
    model = DenseNamed()
    dataset, bound, context = prepared(tmp_path, model, baseline=False)
    rows = dataset.get(torch.arange(5).numpy())
    with torch.no_grad():
        rec = model.rec
        users = context.background[:, 0].round().long()
        expected = torch.cat(
            [
                rec.user_emb(users).mean(0),
                rec.item_emb(context.background[:, 1].round().long()).mean(0),
                rec.cat_emb(context.background[:, 2].round().long()).mean(0),
                torch.zeros(3),
            ]
        )
        embedded = bound.space.embed(bound.feed, rows)
        reference = bound.space.reference(bound.feed, "zeros")(embedded)
    assert torch.allclose(reference[:, : expected.numel()], expected.expand(5, -1))
    assert torch.equal(reference[:, expected.numel() :], rows[:, :3])  # the ids ride along


class CastIds(nn.Module):
    """The item's ids go through a Linear layer, not an embedding: no place to attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(8, 4)
        self.head = nn.Linear(4 + 2 + 3, 2)

    def forward(self, user: torch.Tensor, item: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.user_emb(user), item.float(), dense], dim=1))


def test_a_categorical_column_without_an_embedding_is_refused_for_gradients(
    tmp_path: Path,
) -> None:
    _, bound, _ = prepared(tmp_path, CastIds())
    assert set(bound.missing) == {"item_id", "item_category"}
    entries = [
        ExplainerEntry.model_validate({"type": "feature_ablation"}),
        ExplainerEntry.model_validate({"type": "integrated_gradients"}),
    ]
    [issue] = bound.explainer_issues(entries)
    assert issue.loc == ("explainers", 1, "type")
    assert "'item_id': no nn.Embedding of the model is fed it" in issue.message
    assert "feature_ablation, kernel_shap, lime" in issue.message


def test_embedding_layers_naming_a_layer_that_is_not_fed_the_column(tmp_path: Path) -> None:
    interactions(tmp_path / "interactions.csv", n=20)
    params = CsvParams.model_validate(
        {
            "path": tmp_path / "interactions.csv",
            "label": "clicked",
            "inputs": {
                "user": {"columns": ["user_id"], "categorical": True},
                "item": {"columns": ["item_id", "item_category"], "categorical": True},
                "dense": {"columns": ["price", "age_days", "hour"]},
            },
            "embedding_layers": {"item_id": "cat_emb"},
        }
    )
    with pytest.raises(SpecError) as caught:
        StructuredInputs.build(CsvDataSource().load(params), Rec())
    [issue] = caught.value.issues
    assert issue.loc == ("data", "embedding_layers", "item_id")
    assert issue.message == (
        "layer 'cat_emb' is not fed column 'item_id' in a forward pass; column 'item_id' feeds "
        "item_emb"
    )


def test_smoothgrad_noise_on_the_id_channels_stays_within_the_tables(tmp_path: Path) -> None:
    model = DenseNamed()
    dataset, bound, context = prepared(tmp_path, model)
    rows = dataset.get(torch.arange(40).numpy())
    ours = explainer("smoothgrad", bound.feed, context, nt_samples=8, stdevs=0.5).explain(
        rows, torch.ones(40, dtype=torch.long)
    )
    assert ours.shape == (40, 6) and torch.isfinite(ours).all()
    assert int(ours.abs().mean(0).argmax()) == 1  # item_id


def test_reference_outputs_follow_the_explainers_dense_baseline(tmp_path: Path) -> None:
    """IG with baseline: mean integrates from the mean dense row: its attributions add up to
    f(x) - reference_outputs(params=its params) (what completeness_error should compare)."""
    model = DenseNamed()
    dataset, bound, context = prepared(tmp_path, model, baseline=False)
    rows = dataset.get(torch.arange(40).numpy())
    targets = torch.ones(40, dtype=torch.long)
    ig = explainer("integrated_gradients", bound.feed, context, n_steps=512, baseline="mean")
    attributions = ig.explain(rows, targets)
    with torch.no_grad():
        f_x = model(*fields(rows))[:, 1]
        f_b = bound.space.reference_outputs(bound.feed, rows, params=ig.params)[:, 1]
        zeros = bound.space.reference_outputs(bound.feed, rows)[:, 1]
    error = (attributions.sum(1) - (f_x - f_b)).abs() / (f_x - f_b).abs().clamp_min(1e-6)
    assert float(error.max()) < 0.01
    assert float((f_b - zeros).abs().max()) > 0.1  # the dense baseline matters
