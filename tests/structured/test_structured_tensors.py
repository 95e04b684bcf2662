"""Structured data from a .npz with one array per field: the same rows as from the CSV, the
same run through the CLI, and located errors for a missing array, a wrong shape, float ids."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from test_structured_run import invoke
from tiny_rec import CATEGORIES, interactions, spec

from auditor.data.csv_source import CsvDataSource, CsvParams
from auditor.data.tensors import TensorsDataSource, TensorsParams

FIELDS = {
    "user": {"columns": ["user_id"], "categorical": True},
    "item": {"columns": ["item_id", "item_category"], "categorical": True},
    "dense": {"columns": ["price", "age_days", "hour"]},
}


def arrays(folder: Path, n: int = 120) -> dict[str, np.ndarray]:
    """The interactions CSV as one array per field (ids as the CSV's sorted vocabularies)."""
    path = interactions(folder / "interactions.csv", n=n)
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return {
        "user": np.array([int(r["user_id"][1:]) for r in rows]),
        "item": np.array([[int(r["item_id"]), CATEGORIES.index(r["item_category"])] for r in rows]),
        "dense": np.array([[float(r[c]) for c in ("price", "age_days", "hour")] for r in rows]),
        "y": np.array([int(r["clicked"]) for r in rows]),
    }


def test_npz_fields_give_the_rows_the_csv_gives(tmp_path: Path) -> None:
    np.savez(tmp_path / "data.npz", **arrays(tmp_path))
    npz = TensorsDataSource().load(
        TensorsParams.model_validate({"path": tmp_path / "data.npz", "inputs": FIELDS})
    )
    from_csv = CsvDataSource().load(
        CsvParams.model_validate(
            {"path": tmp_path / "interactions.csv", "label": "clicked", "inputs": FIELDS}
        )
    )
    assert npz.modality == "structured" and npz.keyword
    assert npz.feature_names == from_csv.feature_names
    assert torch.equal(npz.inputs, from_csv.inputs)
    assert np.array_equal(npz.labels, from_csv.labels)


def test_a_run_from_npz_ranks_the_planted_column_first(tmp_path: Path) -> None:
    np.savez(tmp_path / "data.npz", **arrays(tmp_path, n=60))
    body = spec(tmp_path, "  - type: feature_ablation\n")
    start, end = body.index("data:"), body.index("explainers:")
    data = (
        f"data:\n  source: tensors\n  path: {tmp_path / 'data.npz'}\n"
        + body[body.index("  inputs:") : end]
    )
    code, output, folder = invoke(tmp_path, body[:start] + data + body[end:])
    assert code == 0, output
    results = json.loads((folder / "results.json").read_text())
    assert results["explainers"]["feature_ablation"]["ranking"][0]["feature"] == "item_id"
    assert [f["name"] for f in results["data"]["inputs"]] == ["user", "item", "dense"]


def test_missing_arrays_wrong_shapes_and_float_ids_are_located(tmp_path: Path) -> None:
    found = arrays(tmp_path, n=20)
    np.savez(
        tmp_path / "data.npz",
        users=found["user"],
        item=found["item"][:, :1],
        dense=found["dense"],
        y=found["y"],
    )
    fields = {**FIELDS, "dense": {"columns": ["price", "age_days", "hour"], "categorical": True}}
    try:
        TensorsDataSource().load(
            TensorsParams.model_validate({"path": tmp_path / "data.npz", "inputs": fields})
        )
    except Exception as exc:  # SpecError with every issue
        issues = {issue.loc: issue.message for issue in exc.issues}  # type: ignore[attr-defined]
    else:
        raise AssertionError("expected a SpecError")
    path = tmp_path / "data.npz"
    assert issues == {
        ("data", "inputs", "user"): f"{path} has no array 'user' for field 'user'. Did you "
        "mean: users? Arrays: dense, item, users",
        ("data", "inputs", "item"): f"array 'item' in {path} has shape (20, 1); field 'item' "
        "has 2 columns and there are 20 labels: expected (20, 2)",
        ("data", "inputs", "dense"): f"array 'dense' in {path} has dtype float64; a "
        "categorical field holds integer ids",
    }
