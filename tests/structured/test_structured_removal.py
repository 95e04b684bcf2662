"""Removing a categorical value means its reference id (``baseline: <value>``, the declared
``unknown``, or a seeded draw from the column's values in the data), never id 0 or an
average of ids; dense columns go to the background mean."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from test_structured_gradients import explainer, fields, prepared
from tiny_rec import Rec

from auditor.data.csv_source import CsvDataSource, CsvParams
from auditor.errors import SpecError


def test_ablating_item_id_with_a_baseline_id_is_the_output_drop_to_that_id(
    tmp_path: Path,
) -> None:
    model = Rec().eval()
    dataset, bound, context = prepared(tmp_path, model)  # item_id baseline: 1
    rows = dataset.get(np.arange(40))
    targets = torch.ones(40, dtype=torch.long)
    attributions = explainer("feature_ablation", bound.feed, context).explain(rows, targets)
    swapped = rows.clone()
    swapped[:, 1] = 1.0
    with torch.no_grad():
        drop = model(*fields(rows))[:, 1] - model(*fields(swapped))[:, 1]
    assert torch.allclose(attributions[:, 1], drop, atol=1e-6, rtol=0)
    assert (attributions[rows[:, 1] == 1, 1] == 0).all()  # already the reference: no drop
    assert (attributions[:, 1].abs() > 1).sum() >= 15  # odd vs even items: a 6-logit swing


def test_removed_rows_take_reference_ids_and_the_background_mean(tmp_path: Path) -> None:
    dataset, bound, context = prepared(tmp_path, Rec())
    rows = dataset.get(np.arange(10))
    removed = bound.removed(rows)
    assert (removed[:, 0] == dataset.vocabularies["user_id"].index("u3")).all()
    assert (removed[:, 1] == 1).all()
    assert (removed[:, 2] == dataset.vocabularies["item_category"].index("books")).all()
    mean = context.background[:, 3:].mean(0)
    assert torch.allclose(removed[:, 3:], mean.expand(10, -1))


def test_marginal_draws_are_data_values_seeded_per_sample(tmp_path: Path) -> None:
    dataset, bound, _ = prepared(tmp_path, Rec(), baseline=False)
    rows = dataset.get(np.arange(40))
    removed = bound.removed(rows)
    # the same sample draws the same values in any batch, at any position
    again = bound.removed(rows.flip(0)).flip(0)
    assert torch.equal(removed, again)
    assert torch.equal(bound.removed(rows[7:8]), removed[7:8])
    users = set(dataset.inputs[:, 0].tolist())
    assert set(removed[:, 0].tolist()) <= users
    assert (removed[:, :3] != rows[:, :3]).all()  # removing a value changes it
    assert len(set(removed[:, 1].tolist())) > 3  # a draw per sample, not one value
    assert torch.equal(removed[:, 1], removed[:, 1].round())  # ids, never averages
    other = bound.bind(dataset.inputs, seed=1).removed(rows)
    assert not torch.equal(other[:, :3], removed[:, :3])


def test_the_declared_unknown_is_the_default_reference(tmp_path: Path) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text(
        "user_id,item_id,price,clicked\nu1,3,0.5,1\nu2,4,0.1,0\n<unk>,3,0.2,1\nu1,5,0.0,0\n"
    )
    params = CsvParams.model_validate(
        {
            "path": path,
            "label": "clicked",
            "inputs": [
                {"name": "user", "columns": ["user_id"], "categorical": True, "unknown": "<unk>"},
                {"name": "item", "columns": ["item_id"], "categorical": True},
                {"name": "dense", "columns": ["price"]},
            ],
        }
    )
    dataset = CsvDataSource().load(params)
    assert dataset.vocabularies == {"user_id": ["<unk>", "u1", "u2"]}  # sorted, built
    assert dataset.references == {"user_id": 0, "item_id": None}
    assert dataset.keyword is False
    assert dataset.inputs[:, 0].tolist() == [1.0, 2.0, 0.0, 1.0]


def test_a_stray_text_value_in_an_id_column_is_an_error_not_a_new_vocabulary(
    tmp_path: Path,
) -> None:
    path = tmp_path / "interactions.csv"
    path.write_text("item_id,price,clicked\n3,0.5,1\n4,0.1,0\nn/a,0.2,1\n")
    params = CsvParams.model_validate(
        {
            "path": path,
            "label": "clicked",
            "inputs": {
                "item": {"columns": ["item_id"], "categorical": True},
                "dense": {"columns": ["price"]},
            },
        }
    )
    with pytest.raises(SpecError) as caught:
        CsvDataSource().load(params)
    assert str(caught.value.issues[0].message).startswith(
        f"{path} line 4, column 'item_id': 'n/a' is not an integer id, but the column's other "
        "values are"
    )


def test_several_references_per_sample_for_kernel_shap_backgrounds(tmp_path: Path) -> None:
    dataset, bound, context = prepared(tmp_path, Rec(), baseline=False)
    rows = dataset.get(np.arange(12))
    draws = context.embedding.draws(rows, 6)
    assert draws.shape == (12, 6, 6)
    assert torch.equal(draws[:, 0], bound.removed(rows))
    assert torch.equal(context.embedding.draws(rows[3:4], 6), draws[3:4])  # per sample
    assert (draws[:, :, :3] != rows[:, None, :3]).all()  # never the sample's own value
    assert len({tuple(d.tolist()) for d in draws[0, :, :3]}) > 1  # several references
    assert torch.equal(draws[:, :, 3:], draws[:, :1, 3:].expand(-1, 6, -1))  # dense: the mean


def test_marginal_feature_ablation_is_the_mean_drop_over_the_draws(tmp_path: Path) -> None:
    model = Rec().eval()
    dataset, bound, context = prepared(tmp_path, model, baseline=False)
    rows = dataset.get(np.arange(40))
    targets = torch.ones(40, dtype=torch.long)
    attributions = explainer("feature_ablation", bound.feed, context).explain(rows, targets)
    draws = context.embedding.draws(rows)
    assert draws.shape[1] == 8
    with torch.no_grad():
        f_x = model(*fields(rows))[:, 1]
        drops = []
        for d in range(8):
            swapped = rows.clone()
            swapped[:, 1] = draws[:, d, 1]
            drops.append(f_x - model(*fields(swapped))[:, 1])
    assert torch.allclose(attributions[:, 1], torch.stack(drops).mean(0), atol=1e-5)


def test_averaging_over_draws_ranks_the_planted_column_first(tmp_path: Path) -> None:
    """One marginal draw of item_id is often another item of the same parity (no change);
    the mean over 8 draws is not."""
    model = Rec().eval()
    dataset, bound, context = prepared(tmp_path, model, baseline=False)
    rows = dataset.get(np.arange(40))
    with torch.no_grad():
        predicted = model(*fields(rows)).argmax(1)
    correct = predicted.numpy() == dataset.labels[:40]
    for name, params in (("feature_ablation", {}), ("lime", {"n_samples": 300})):
        a = explainer(name, bound.feed, context, **params).explain(rows, predicted)
        first = (a.abs().argmax(1) == 1).numpy()[correct]
        assert first.mean() >= 0.95, (name, first.mean())
