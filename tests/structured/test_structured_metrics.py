"""Perturbation explainers and metrics on structured data through the CLI, with the fields
given as a list (positional arguments): LIME and integrated gradients rank the planted
column first, deletion removes columns to their references and beats a random order."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from auditor.report.sections.summary import budget_note
from auditor.results import ExplainerResult

sys.path.insert(0, str(Path(__file__).parent))

from test_structured_run import invoke
from tiny_rec import interactions, spec

POSITIONAL = """\
  inputs:
    - {name: user, columns: [user_id], categorical: true}
    - {name: item, columns: [item_id, item_category], categorical: true, baseline: {item_id: 1}}
    - {name: dense, columns: [price, age_days, hour]}
"""


def test_lime_ig_and_deletion_on_positional_fields(tmp_path: Path) -> None:
    interactions(tmp_path / "interactions.csv", n=60)
    body = spec(
        tmp_path,
        "  - type: lime\n    params: {n_samples: 200}\n"
        "  - type: integrated_gradients\n    params: {n_steps: 32}\n",
    )
    start = body.index("  inputs:")
    end = body.index("explainers:")
    body = body[:start] + POSITIONAL + body[end:]
    body += "metrics:\n  - type: deletion\n    params: {steps: 6}\n"
    code, output, folder = invoke(tmp_path, body)
    assert code == 0, output
    results = json.loads((folder / "results.json").read_text())
    for name in ("lime", "integrated_gradients"):
        assert results["explainers"][name]["ranking"][0]["feature"] == "item_id", name
    [item] = [
        f
        for f in json.loads((folder / "categories.json").read_text())["fields"]
        if f["name"] == "item"
    ]
    assert item["baseline"] == "item_id=1, item_category=marginal"
    deletion = results["explainers"]["lime"]["metrics"]["deletion"]
    assert deletion["values"]["gain"] > 0
    assert "6 columns set to a 'reference" in deletion["note"]


def test_completeness_of_ig_is_measured_from_its_own_mixed_baseline(tmp_path: Path) -> None:
    """IG with the ``mean`` dense baseline: the metric's reference is where IG's path starts
    (categorical columns at their reference embeddings, dense columns at their mean), so the
    error is the quadrature's, not the distance between two baselines."""
    interactions(tmp_path / "interactions.csv", n=40)
    body = spec(
        tmp_path, "  - type: integrated_gradients\n    params: {n_steps: 64, baseline: mean}\n"
    )
    body += "metrics:\n  - type: completeness_error\n"
    code, output, folder = invoke(tmp_path, body)
    assert code == 0, output
    metric = json.loads((folder / "results.json").read_text())["explainers"][
        "integrated_gradients"
    ]["metrics"]["completeness_error"]
    # Quadrature error only (ReLU kinks at 64 steps): from the wrong reference it is > 1.
    assert metric["mean"] < 0.01 and metric["values"]["max"] < 0.1, metric
    assert "the dense columns at the 'mean' baseline" in metric["note"]


def test_kernel_shap_on_fields_ranks_the_planted_column_and_adds_up(tmp_path: Path) -> None:
    """KernelSHAP integrates a column out over the sample's own removed copies (marginal
    draws of its ids, never k-means centres of ids): the planted item_id ranks first, and the
    values add up to f(x) minus the mean output over those copies."""
    interactions(tmp_path / "interactions.csv", n=40)
    body = spec(tmp_path, "  - type: kernel_shap\n")
    body += "metrics:\n  - type: completeness_error\n"
    code, output, folder = invoke(tmp_path, body)
    assert code == 0, output
    record = json.loads((folder / "results.json").read_text())["explainers"]["kernel_shap"]
    assert record["ranking"][0]["feature"] == "item_id"
    assert record["metrics"]["completeness_error"]["values"]["max"] < 1e-4
    # The report states the budget and the additivity error (6 columns: every coalition).
    note = budget_note(ExplainerResult.model_validate(record))
    assert note.startswith("62 coalitions per sample; additivity error at most "), note
