"""Structured data end to end through the CLI: a recommender ``Rec(user, item, dense)`` with
a planted preference for even items, on interactions read from CSV with named fields."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from tiny_rec import interactions, spec

from auditor.cli import cli


def invoke(tmp_path: Path, body: str, command: str = "run") -> tuple[int, str, Path]:
    path = tmp_path / "rec.yaml"
    path.write_text(f"version: 1\nname: rec\nseed: 0\n{body}")
    args = [command, str(path)]
    if command == "run":
        args += ["--out", str(tmp_path / "out"), "--run-id", "r", "-q"]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output, tmp_path / "out" / "rec" / "r"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    folder = tmp_path_factory.mktemp("rec")
    interactions(folder / "interactions.csv")
    body = spec(folder, "  - type: feature_ablation\n")
    body += "checks:\n  - {ranking: feature_ablation, top_k: 1, must_include: [item_id]}\n"
    return invoke(folder, body.replace("formats: []", "formats: [html]"))


def test_feature_ablation_ranks_the_planted_column_first(run: tuple[int, str, Path]) -> None:
    code, output, folder = run
    assert code == 0, output
    results = json.loads((folder / "results.json").read_text())
    assert results["data"]["modality"] == "structured"
    assert results["data"]["feature_names"] == [
        "user_id",
        "item_id",
        "item_category",
        "price",
        "age_days",
        "hour",
    ]
    ranking = results["explainers"]["feature_ablation"]["ranking"]
    assert ranking[0]["feature"] == "item_id"
    assert results["checks"][0]["status"] == "pass"


def test_attributions_are_stored_per_column_and_per_field(run: tuple[int, str, Path]) -> None:
    _, _, folder = run
    whole = np.load(folder / "attributions" / "feature_ablation.npy")
    assert whole.shape == (120, 6)
    parts = {
        name: np.load(folder / "attributions" / "feature_ablation" / f"{name}.npy")
        for name in ("user", "item", "dense")
    }
    assert [p.shape for p in parts.values()] == [(120, 1), (120, 2), (120, 3)]
    assert np.array_equal(np.concatenate(list(parts.values()), axis=1), whole)


def test_categories_json_keeps_the_vocabularies(run: tuple[int, str, Path]) -> None:
    _, _, folder = run
    categories = json.loads((folder / "categories.json").read_text())
    assert categories["vocabularies"] == {
        "user_id": [f"u{i}" for i in range(8)],
        "item_category": ["books", "games", "music"],
    }
    item = categories["fields"][1]
    assert item["embedding_layers"] == {"item_id": "item_emb", "item_category": "cat_emb"}


def test_results_json_describes_the_fields(run: tuple[int, str, Path]) -> None:
    _, _, folder = run
    inputs = json.loads((folder / "results.json").read_text())["data"]["inputs"]
    assert [f["name"] for f in inputs] == ["user", "item", "dense"]
    assert inputs[1] == {
        "name": "item",
        "columns": ["item_id", "item_category"],
        "categorical": True,
        "unknown": None,
        "baseline": "marginal",
        "embedding_layers": {"item_id": "item_emb", "item_category": "cat_emb"},
        "vocabulary_sizes": {"item_id": None, "item_category": 3},
    }
    assert inputs[2]["categorical"] is False and inputs[2]["baseline"] is None


def test_the_report_shows_categorical_values_by_their_labels(run: tuple[int, str, Path]) -> None:
    _, _, folder = run
    html = (folder / "report.html").read_text()
    labels = re.findall(r'<td class="feat">(\w+) <span class="muted">= ([^<]*)</span>', html)
    shown = {}
    for column, value in labels:
        shown.setdefault(column, set()).add(value)
    assert shown["item_category"] <= {"books", "games", "music"}
    assert shown["user_id"] <= {f"u{i}" for i in range(8)}
    assert all(v.isdigit() for v in shown["item_id"])  # ids as integers, not 3.0
    assert all("." in v or v.lstrip("-").isdigit() for v in shown["age_days"])


def test_an_unknown_column_is_a_located_spec_error(tmp_path: Path) -> None:
    interactions(tmp_path / "interactions.csv")
    body = spec(tmp_path, "  - type: feature_ablation\n").replace(
        "[price, age_days, hour]", "[price, age_day, hour]"
    )
    code, output, _ = invoke(tmp_path, body, "validate")
    assert code == 2, output
    assert "rec.yaml:15" in output and "data.inputs.dense.columns[1]" in output
    assert "column 'age_day' is not in" in output and "Did you mean: age_days?" in output


def test_a_column_in_two_fields_and_the_label_as_input_are_errors(tmp_path: Path) -> None:
    interactions(tmp_path / "interactions.csv")
    body = spec(tmp_path, "  - type: feature_ablation\n").replace(
        "[price, age_days, hour]", "[price, item_id, clicked]"
    )
    code, output, _ = invoke(tmp_path, body, "validate")
    assert code == 2, output
    assert "column 'item_id' is already in field 'item'" in output
    assert "'clicked' is the label column; it cannot also be an input" in output


def test_an_unknown_categorical_value_names_the_value_column_and_line(tmp_path: Path) -> None:
    interactions(tmp_path / "interactions.csv", row=6, column="item_category", value="films")
    (tmp_path / "categories.txt").write_text("books\ngames\nmusic\n")
    data_extra = f"  vocabularies: {{item_category: {tmp_path / 'categories.txt'}}}\n"
    body = spec(tmp_path, "  - type: feature_ablation\n", data_extra=data_extra)
    code, output, _ = invoke(tmp_path, body)
    assert code == 2, output
    assert "data.vocabularies.item_category" in output
    assert "line 8, column 'item_category': value 'films' is not in the vocabulary" in output


def test_an_unknown_value_maps_to_the_declared_unknown(tmp_path: Path) -> None:
    interactions(tmp_path / "interactions.csv")
    # u7 is not in the file's vocabulary: it maps to <unk>, the last of its 8 ids
    (tmp_path / "users.txt").write_text("\n".join([f"u{i}" for i in range(7)] + ["<unk>"]))
    body = spec(
        tmp_path,
        "  - type: feature_ablation\n",
        data_extra=f"  vocabularies: {{user_id: {tmp_path / 'users.txt'}}}\n",
    ).replace("categorical: true}\n    item", 'categorical: true, unknown: "<unk>"}\n    item')
    code, output, folder = invoke(tmp_path, body)
    assert code == 0, output
    categories = json.loads((folder / "categories.json").read_text())
    assert categories["vocabularies"]["user_id"][7] == "<unk>"
    assert categories["references"]["user_id"] == 7  # the unknown value removes a user
    raw = np.loadtxt(tmp_path / "interactions.csv", delimiter=",", skiprows=1, dtype=str)
    gallery = np.load(folder / "gallery.npz")
    ids = gallery["inputs"][:, 0]
    users = raw[gallery["indices"], 0]
    assert np.array_equal(ids == 7, users == "u7")


def test_an_id_beyond_the_embedding_is_an_error_at_the_field(tmp_path: Path) -> None:
    interactions(tmp_path / "interactions.csv")
    body = spec(tmp_path, "  - type: feature_ablation\n").replace(
        "  class: tiny_rec:Rec\n", "  class: tiny_rec:Rec\n  init: {n_items: 6}\n"
    )
    code, output, _ = invoke(tmp_path, body)
    assert code == 2, output
    assert "data.inputs.item" in output
    assert (
        "field 'item': column 'item_id' has ids up to 9, but its embedding 'item_emb' has "
        "6 rows (ids 0..5)"
    ) in output


def test_gradients_on_ids_without_an_embedding_are_refused_at_planning(tmp_path: Path) -> None:
    interactions(tmp_path / "interactions.csv")
    body = spec(tmp_path, "  - type: integrated_gradients\n").replace(
        "tiny_rec:Rec", "test_structured_gradients:CastIds"
    )
    code, output, folder = invoke(tmp_path, body)
    assert code == 2, output
    assert "rec.yaml:17" in output and "explainers[0].type" in output
    assert "explainer 'integrated_gradients' differentiates the model" in output
    assert "'item_id': no nn.Embedding of the model is fed it" in output
    assert not folder.exists()  # refused before anything is written
