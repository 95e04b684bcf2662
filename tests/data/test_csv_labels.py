"""A CSV audit end to end: text labels need the model's class order, columns that are not
features are excluded, training statistics standardize, and the report shows CSV units.

The model is a fixed linear map whose class k is feature k (``PickModel``), so the class
order decides the accuracy: with the model's order it is 1.0, with the sorted order not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.report.common import fmt_num
from auditor.report.sections import data as data_section
from auditor.report.sections import gallery as gallery_section
from auditor.report.source import ReportSource
from auditor.run_folder import RunFolder

ORDER = ["luminal", "basal", "her2"]  # the model's class order: feature k scores class k
MEAN, STD = 100.0, 10.0  # the "training statistics" the CSV's units are shifted by

MODEL = '''
import torch
from torch import nn


class PickModel(nn.Module):
    """Logit k is feature k: the class order is the feature order."""

    def __init__(self, n: int = 3) -> None:
        super().__init__()
        self.linear = nn.Linear(n, n)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(n))
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)
'''


def write_data(folder: Path, rows: int = 24) -> np.ndarray:
    """A CSV whose feature k is largest for samples of class ORDER[k]; returns the features."""
    rng = np.random.default_rng(0)
    labels = np.arange(rows) % 3
    z = rng.normal(0.0, 0.3, size=(rows, 3))
    z[np.arange(rows), labels] += 2.0
    raw = np.round(MEAN + STD * z, 3)
    lines = ["sample_id,g_luminal,g_basal,g_her2,subtype"]
    lines += [
        f"S{i:03d},{raw[i, 0]},{raw[i, 1]},{raw[i, 2]},{ORDER[labels[i]]}" for i in range(rows)
    ]
    (folder / "tumours.csv").write_text("\n".join(lines) + "\n")
    (folder / "pick_model.py").write_text(MODEL)
    return raw


def write_spec(folder: Path, data_extra: str) -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(
        f"""version: 1
name: tumours
model:
  source: python
  class: pick_model:PickModel
  pythonpath: [.]
data:
  source: csv
  path: tumours.csv
  label: subtype
{data_extra}
explainers:
  - type: saliency
checks:
  - metric: model.accuracy
    min: 0.9
report:
  formats: []
output: runs
"""
    )
    return spec


def run(spec: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["run", str(spec), "--run-id", "r", "-q"])
    return result.exit_code, result.output


def results(spec: Path) -> dict:
    return json.loads((spec.parent / "runs" / "tumours" / "r" / "results.json").read_text())


def test_text_labels_without_classes_are_a_spec_error(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = write_spec(tmp_path, "  exclude: [sample_id]")
    code, output = run(spec)
    assert code == 2
    assert output == (
        f"error: {spec}:10:10 data.label: column 'subtype' holds text labels "
        "(basal, her2, luminal); give the model's class order: classes: [basal, her2, luminal]\n"
    )
    assert not (tmp_path / "runs").exists()


def test_with_the_models_class_order_the_accuracy_is_right(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = write_spec(tmp_path, "  exclude: [sample_id]\n  classes: [luminal, basal, her2]")
    code, output = run(spec)
    assert code == 0, output
    got = results(spec)
    assert got["predictions"]["accuracy"] == 1.0
    assert got["data"]["class_names"] == ORDER
    assert got["data"]["feature_names"] == ["g_luminal", "g_basal", "g_her2"]


def test_the_sorted_order_would_have_been_wrong(tmp_path: Path) -> None:
    # What auditor silently did before: sorted names. The audit now fails its check.
    write_data(tmp_path)
    spec = write_spec(tmp_path, "  exclude: [sample_id]\n  classes: [basal, her2, luminal]")
    code, _ = run(spec)
    assert code == 1
    assert results(spec)["predictions"]["accuracy"] == 0.0


def test_a_text_column_suggests_exclude(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = write_spec(tmp_path, "  classes: [luminal, basal, her2]")
    code, output = run(spec)
    assert code == 2
    assert output == (
        f"error: {spec}:9:9 data.path: column 'sample_id' ('S000' on line 2) holds text, "
        "not numbers; drop it with exclude: [sample_id]\n"
    )


def test_both_problems_at_once(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = write_spec(tmp_path, "")
    code, output = run(spec)
    assert code == 2
    assert set(output.splitlines()) == {
        f"error: {spec}:9:9 data.path: column 'sample_id' ('S000' on line 2) holds text, "
        "not numbers; drop it with exclude: [sample_id]",
        f"error: {spec}:10:10 data.label: column 'subtype' holds text labels "
        "(basal, her2, luminal); give the model's class order: classes: [basal, her2, luminal]",
    }


@pytest.mark.parametrize("form", ["inline", "json", "npz"])
def test_training_statistics_and_the_report_in_csv_units(tmp_path: Path, form: str) -> None:
    raw = write_data(tmp_path)
    stats = {"mean": [MEAN] * 3, "std": [STD] * 3}
    if form == "inline":
        standardize, origin = "{mean: [100, 100, 100], std: [10, 10, 10]}", "the spec"
    elif form == "json":
        (tmp_path / "stats.json").write_text(json.dumps(stats))
        standardize, origin = "stats.json", str(tmp_path / "stats.json")
    else:
        np.savez(tmp_path / "stats.npz", mean=np.array(stats["mean"]), std=np.array(stats["std"]))
        standardize, origin = "stats.npz", str(tmp_path / "stats.npz")
    spec = write_spec(
        tmp_path,
        f"  exclude: [sample_id]\n  classes: [luminal, basal, her2]\n  standardize: {standardize}",
    )
    code, output = run(spec)
    assert code == 0, output
    got = results(spec)
    assert got["data"]["description"] == (
        f"CSV {tmp_path / 'tumours.csv'}: 24 rows, 3 features, label 'subtype' (3 classes); "
        f"excluded: sample_id; standardized with the training statistics from {origin}"
    )
    summary = got["data"]["feature_summary"]
    np.testing.assert_allclose([f["mean"] for f in summary], raw.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose([f["std"] for f in summary], raw.std(axis=0), rtol=1e-5)
    np.testing.assert_allclose([f["min"] for f in summary], raw.min(axis=0), rtol=1e-6)
    assert {f["units"] for f in summary} == {"data"}
    folder = RunFolder(tmp_path / "runs" / "tumours" / "r")
    with np.load(folder.file("gallery.npz")) as gallery:
        rows = gallery["indices"]
        # the model was fed (x - mean) / std; the gallery also keeps the CSV's values
        np.testing.assert_allclose(gallery["inputs"], (raw[rows] - MEAN) / STD, atol=1e-5)
        np.testing.assert_allclose(gallery["values"], raw[rows], rtol=1e-6)
    source = ReportSource.open(folder)
    view = data_section.build(source)
    assert view.features[0].name == "g_luminal"
    assert view.features[0].mean == f"{raw[:, 0].mean():.4g}"
    assert view.features_note == (
        "over the 24 samples of the slice; values in the CSV's own units (before standardization)"
    )
    names = got["data"]["feature_names"]
    rows_shown = gallery_section.build(source).rows
    assert rows_shown
    for row in rows_shown:
        (cell,) = row.cells
        for c in cell.contributions:
            assert c.value == fmt_num(float(raw[row.index, names.index(c.feature)]), 3)


def test_standardize_true_is_named_in_the_reports_data_section(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = write_spec(
        tmp_path, "  exclude: [sample_id]\n  classes: [luminal, basal, her2]\n  standardize: true"
    )
    code, output = run(spec)
    assert code == 0, output
    view = data_section.build(ReportSource.open(RunFolder(tmp_path / "runs" / "tumours" / "r")))
    description = dict(view.facts)["Description"]
    assert description.endswith(
        "; standardized with the CSV file's own statistics, not the training statistics"
    )


def test_validate_finds_the_csv_problems_without_a_run(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = write_spec(tmp_path, "")
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 2
    assert set(result.output.splitlines()) == {
        f"error: {spec}:9:9 data.path: column 'sample_id' ('S000' on line 2) holds text, "
        "not numbers; drop it with exclude: [sample_id]",
        f"error: {spec}:10:10 data.label: column 'subtype' holds text labels "
        "(basal, her2, luminal); give the model's class order: classes: [basal, her2, luminal]",
    }
    spec = write_spec(tmp_path, "  exclude: [sample_id]\n  classes: [luminal, basal, her2]")
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 0, result.output


def test_validate_plans_the_spec_even_when_the_csv_has_problems(tmp_path: Path) -> None:
    """The header still names the features: the data's problems, an explainer that cannot
    apply and a misspelled feature come in one round."""
    write_data(tmp_path)
    spec = write_spec(tmp_path, "")
    spec.write_text(
        spec.read_text()
        .replace(
            "  - type: saliency\n",
            "  - type: saliency\n  - type: gradcam\n    params: {layer: linear}\n",
        )
        .replace(
            "    min: 0.9\n",
            "    min: 0.9\n  - ranking: saliency\n    top_k: 1\n    must_include: [g_lumnal]\n",
        )
    )
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == [
        f"{spec}:9:9 data.path",
        f"{spec}:10:10 data.label",
        f"{spec}:14:11 explainers[1].type",
        f"{spec}:21:20 checks[1].must_include[0]",
    ]
    assert lines[3].endswith("unknown feature 'g_lumnal'. Did you mean: g_luminal?")
