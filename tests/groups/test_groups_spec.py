"""``data.groups`` in the spec: inline or from a .json/.csv file, checked by ``auditor
validate`` against the data's columns (exit 2, each problem at its file:line)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from auditor.cli import cli
from auditor.data.groups import build_groups, read_groups
from auditor.spec import load_spec

HEAD = """\
version: 1
name: t
model:
  source: python
  class: tiny:Net
"""
CANCER = HEAD + "data:\n  source: sklearn\n  name: breast_cancer\n"


def validate(folder: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    (folder / "spec.yaml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(folder)
    result = CliRunner().invoke(cli, ["validate", "spec.yaml"])
    return result.exit_code, result.stderr.splitlines()


def test_bad_groups_are_located_spec_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = CANCER + (
        "  groups:\n"
        "    size: [mean radius, mean perimetr]\n"  # line 10: a misspelled column
        "    again: [mean radius]\n"  # line 11: mean radius is in 'size' already
        "    mean area: [worst area]\n"  # line 12: named like a column
        "    nothing: []\n"  # line 13: empty
        "explainers:\n  - type: feature_ablation\n"
    )
    code, errors = validate(tmp_path, text, monkeypatch)
    assert code == 2
    assert errors == [
        "error: spec.yaml:10:11 data.groups.size: 'mean perimetr' is not a column. "
        "Did you mean: mean perimeter?",
        "error: spec.yaml:11:12 data.groups.again: column 'mean radius' is in groups 'size' "
        "and 'again'",
        "error: spec.yaml:12:16 data.groups.mean area: group 'mean area' has the name of a "
        "column; rename it",
        "error: spec.yaml:13:14 data.groups.nothing: group 'nothing' is empty",
    ]


def test_groups_on_images_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = HEAD + "data:\n  source: sklearn\n  name: digits\n  groups: {top: [r0c0]}\n"
    text += "explainers:\n  - type: saliency\n"
    code, errors = validate(tmp_path, text, monkeypatch)
    assert code == 2
    assert errors == [
        "error: spec.yaml:9:11 data.groups: groups apply to tabular or structured data, not image"
    ]


def test_a_ranking_check_may_name_a_group(tmp_path: Path) -> None:
    """A group name is known to ranking checks; a misspelled one is still an error."""
    text = CANCER + (
        "  groups: {size: [mean radius, mean perimeter, mean area]}\n"
        "explainers:\n  - type: feature_ablation\n"
        "checks:\n  - ranking: feature_ablation\n    top_k: 1\n    must_include: [size]\n"
    )
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    assert load_spec(tmp_path / "spec.yaml").spec.data.groups == {
        "size": ["mean radius", "mean perimeter", "mean area"]
    }


def test_groups_files_json_and_csv(tmp_path: Path) -> None:
    (tmp_path / "g.json").write_text(json.dumps({"a": ["x1", "x2"], "b": ["x0"]}))
    (tmp_path / "g.csv").write_text("group,column\na,x1\nb,x0\na,x2\n")
    assert read_groups(tmp_path / "g.json") == {"a": ["x1", "x2"], "b": ["x0"]}
    assert read_groups(tmp_path / "g.csv") == {"a": ["x1", "x2"], "b": ["x0"]}
    (tmp_path / "bad.csv").write_text("group,column\na,x1,x2\n")
    with pytest.raises(ValueError, match="line 2: expected two fields"):
        read_groups(tmp_path / "bad.csv")


def test_groups_file_in_the_spec(tmp_path: Path) -> None:
    (tmp_path / "g.csv").write_text("group,column\nsize,mean radius\nsize,mean area\n")
    text = CANCER + "  groups: g.csv\nexplainers:\n  - type: lime\n"
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    assert load_spec(tmp_path / "spec.yaml").spec.data.groups == {
        "size": ["mean radius", "mean area"]
    }


def test_units_sums_and_even_split() -> None:
    """Groups first (spec order), then ungrouped columns; a group's value split over its
    columns sums back to it."""
    groups, issues = build_groups({"g": ["c", "a"]}, ["a", "b", "c", "d"], "tabular")
    assert issues == [] and groups is not None
    assert groups.names == ["g", "b", "d"]
    assert groups.unit_of.tolist() == [0, 1, 0, 2]
    values = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert groups.sum_units(values).tolist() == [[4.0, 2.0, 4.0]]
    repeated = torch.tensor([[6.0, 2.0, 6.0, 4.0]])  # Captum's masked output: 6 on each of g
    split = groups.per_column(repeated)
    assert split.tolist() == [[3.0, 2.0, 3.0, 4.0]]
    assert groups.sum_units(split.numpy()).tolist() == [[6.0, 2.0, 4.0]]
