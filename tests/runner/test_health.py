"""Health warnings: audits that mean little are never a plain green report.

Each warning comes from a real run of a tiny model on real or generated data: a model
with a constant output (accuracy at chance, all-zero gradients), a recommender that casts
id columns to indices (zero gradient for those columns), a model over 500 columns that no
single shuffled column moves (an all-tied permutation ranking) and a depth-1 tree
mimicking the digits CNN (low surrogate fidelity).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT, read_results

from auditor import health
from auditor.cli import cli
from auditor.data.sklearn_source import load_arrays
from auditor.health import attribution_warnings, scan_attributions, tie_warnings, tied_top
from auditor.report.source import ReportSource
from auditor.report.view import build_view
from auditor.results import (
    DataSummary,
    ExplainerResult,
    HealthWarning,
    PredictionSummary,
    results_schema,
)
from auditor.run_folder import RunFolder
from auditor.runner import verdict

HERE = Path(__file__).parent


def audit(tmp_path: Path, body: str, *args: str, name: str = "health") -> tuple[int, Path, str]:
    """Run a spec (``body`` holds model, data and the rest) -> exit code, run folder, output."""
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"version: 1\nname: {name}\nseed: 0\n{body}")
    result = CliRunner().invoke(
        cli, ["run", str(spec), "--out", str(tmp_path / "out"), "--run-id", "r", "-q", *args]
    )
    return result.exit_code, tmp_path / "out" / name / "r", result.output


def codes(results: dict, code: str) -> list[dict]:
    return [w for w in results["warnings"] if w["code"] == code]


CONSTANT = f"""\
model:
  source: python
  class: health_models:ConstantModel
  pythonpath: [{HERE}]
data:
  source: sklearn
  name: breast_cancer
  split: test
  batch_size: 64
explainers:
  - type: saliency
report:
  formats: [html]
"""


@pytest.fixture(scope="module")
def constant_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    """The constant model on breast_cancer with --fail-on warning, HTML report."""
    return audit(tmp_path_factory.mktemp("constant"), CONSTANT, "--fail-on", "warning")


def test_accuracy_at_chance(constant_run: tuple[int, Path, str]) -> None:
    _, folder, _ = constant_run
    results = read_results(folder)
    _, labels, _ = load_arrays("breast_cancer", "test")
    accuracy = float((labels == 0).mean())  # the model always says class 0
    assert accuracy < 0.5
    assert codes(results, "accuracy_at_chance") == [
        {
            "code": "accuracy_at_chance",
            "subject": "model",
            "message": f"accuracy on the slice is {accuracy:.3f}, at or below chance (1/2 = 0.500)",
            "action": "explanations of a model that does not predict say nothing about it; "
            "check that the weights are the trained ones, that the inputs are preprocessed as "
            "in training and that the labels follow the model's class order (data.classes)",
            "features": [],
        }
    ]


def test_all_zero_attributions(constant_run: tuple[int, Path, str]) -> None:
    _, folder, _ = constant_run
    results = read_results(folder)
    assert not np.load(folder / "attributions" / "saliency.npy").any()
    [warning] = codes(results, "attributions_zero")
    assert warning["subject"] == "saliency"
    assert warning["message"] == "saliency: attributions are zero for every sample and feature"
    # a ranking of zeros is tied too, but the zero warning already says all there is
    assert codes(results, "ranking_tied") == [] and codes(results, "zero_features") == []


def test_fail_on_warning_exits_1_and_the_junit_and_log_say_why(
    constant_run: tuple[int, Path, str],
) -> None:
    exit_code, folder, output = constant_run
    assert exit_code == 1, output
    results = read_results(folder)
    assert results["checks"] == []  # no check failed: the warnings alone fail the run
    assert (results["status"], results["exit_code"]) == ("failed", 1)
    assert output.strip().endswith("verdict: FAILED WITH 2 WARNINGS (exit 1)")
    suite = ET.fromstring((folder / "junit.xml").read_text())
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"health accuracy_at_chance model", "health attributions_zero saliency"}
    failure = cases["health attributions_zero saliency"].find("failure")
    assert failure is not None and failure.get("type") == "health_warning"
    assert suite.get("failures") == "2"


def test_warnings_do_not_change_the_exit_code_without_fail_on_warning() -> None:
    warning = HealthWarning(code="low_fidelity", subject="t", message="m", action="a")
    assert verdict({}, [], [], "error", [warning]) == 0
    assert verdict({}, [], [], "warning", [warning]) == 1
    assert verdict({}, [], [], "warning", []) == 0


def test_warnings_lead_the_summary_and_the_report_is_not_green(
    constant_run: tuple[int, Path, str],
) -> None:
    _, folder, _ = constant_run
    src = ReportSource.open(RunFolder(folder))
    view = build_view(src)
    assert [(w.code, w.subject) for w in view.summary.warnings] == [
        ("accuracy_at_chance", "model"),
        ("attributions_zero", "saliency"),
    ]
    assert view.summary.reasons[-1] == (
        "Health warning: saliency: attributions are zero for every sample and feature"
    )
    facts = {f.label: f for f in view.summary.facts}
    assert facts["Accuracy on the slice"].status_class == "fail"
    html = (folder / "report.html").read_text()
    summary = html[html.index('<section id="summary"') :]
    box = summary[summary.index('<div class="health"') : summary.index("<h3>Checks</h3>")]
    assert "2 health warnings: these results may mean little" in box
    assert "saliency: attributions are zero for every sample and feature" in box
    assert "accuracy_at_chance" in box


def test_a_pass_with_warnings_is_not_plain_green(constant_run: tuple[int, Path, str]) -> None:
    _, folder, _ = constant_run
    raw = read_results(folder)
    raw.update(status="passed", exit_code=0)  # as without --fail-on warning
    (folder / "results.json").write_text(json.dumps(raw))
    view = build_view(ReportSource.open(RunFolder(folder)))
    assert (view.meta.verdict, view.meta.verdict_class) == ("PASS WITH WARNINGS", "warn")
    assert (view.summary.verdict, view.summary.verdict_class) == ("PASS WITH WARNINGS", "warn")


def test_results_schema_declares_warnings() -> None:
    schema = results_schema()
    assert "warnings" in schema["properties"]
    warning = schema["$defs"]["HealthWarning"]
    assert set(warning["properties"]) == {"code", "subject", "message", "action", "features"}
    assert "ranking_tied" in schema["$defs"]["ExplainerResult"]["properties"]


def test_zero_gradient_for_id_columns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 64
    rows = ["user_id,item_id,price,age_days,label"]
    for _ in range(n):
        rows.append(
            f"{rng.integers(10)},{rng.integers(5)},{rng.normal():.4f},{rng.normal():.4f},"
            f"{rng.integers(2)}"
        )
    (tmp_path / "clicks.csv").write_text("\n".join(rows) + "\n")
    body = f"""\
model:
  source: python
  class: health_models:IdColumnsModel
  pythonpath: [{HERE}]
data:
  source: csv
  path: clicks.csv
  label: label
  batch_size: 32
explainers:
  - type: saliency
  - type: integrated_gradients
    params: {{n_steps: 8}}
  - type: feature_ablation
report:
  formats: []
"""
    exit_code, folder, output = audit(tmp_path, body)
    assert exit_code == 0, output
    results = read_results(folder)
    zero = codes(results, "zero_features")
    assert [w["subject"] for w in zero] == ["saliency", "integrated_gradients"]
    assert zero[0]["message"] == "saliency: gradient is zero everywhere for user_id, item_id"
    assert zero[0]["action"] == (
        "the model likely uses them as indices; use a perturbation explainer or declare them "
        "categorical"
    )
    assert zero[0]["features"] == ["user_id", "item_id"]
    # a perturbation explainer sees the ids matter: no warning for it
    ablation = np.load(folder / "attributions" / "feature_ablation.npy")
    assert np.abs(ablation[:, :2]).sum() > 0


def test_all_tied_permutation_ranking(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, columns = 96, 200  # (500 columns, as in the issue, take 30 s to shuffle)
    signal = rng.choice([-1.0, 1.0], size=n) * rng.uniform(1.0, 2.0, size=n)
    table = signal[:, None] + rng.normal(0, 0.5, size=(n, columns))
    labels = (signal > 0).astype(int)
    header = ",".join([*(f"GENE{i}" for i in range(columns)), "label"])
    lines = [header] + [
        ",".join([*(f"{v:.4f}" for v in row), str(y)]) for row, y in zip(table, labels, strict=True)
    ]
    (tmp_path / "genes.csv").write_text("\n".join(lines) + "\n")
    body = f"""\
model:
  source: python
  class: health_models:MeanOfColumnsModel
  pythonpath: [{HERE}]
data:
  source: csv
  path: genes.csv
  label: label
  batch_size: 96
explainers:
  - type: permutation_importance
    params: {{n_repeats: 2}}
report:
  formats: []
"""
    exit_code, folder, output = audit(tmp_path, body)
    assert exit_code == 0, output
    results = read_results(folder)
    assert results["predictions"]["accuracy"] == 1.0
    assert np.load(folder / "rankings" / "permutation_importance.npy")[0].max() == 0
    assert results["warnings"] == [
        {
            "code": "ranking_tied",
            "subject": "permutation_importance",
            "message": "permutation_importance: no feature changes the score when shuffled "
            "alone (all 200 features have importance 0)",
            "action": "features may matter only together (correlated or redundant columns): "
            "shuffle them as feature groups, or use an attribution explainer; a top 10 of "
            "this ranking would be arbitrary",
            "features": [],
        }
    ]
    assert results["explainers"]["permutation_importance"]["ranking_tied"] is True


def test_low_fidelity_surrogate(tmp_path: Path) -> None:
    body = f"""\
model:
  source: python
  class: examples.models:DigitsCNN
  pythonpath: [{ROOT}]
  init: {{num_classes: 10}}
  weights: {ROOT / "models" / "digits_cnn.safetensors"}
data:
  source: sklearn
  name: digits
  split: test
  slice: {{start: 0, stop: 256}}
  batch_size: 64
explainers:
  - type: surrogate_tree
    params: {{max_depth: 1}}
report:
  formats: []
"""
    exit_code, folder, output = audit(tmp_path, body)
    assert exit_code == 0, output
    results = read_results(folder)
    fidelity = results["explainers"]["surrogate_tree"]["fidelity"]["accuracy"]
    assert fidelity < 0.5
    [warning] = results["warnings"]
    assert warning["code"] == "low_fidelity" and warning["subject"] == "surrogate_tree"
    assert warning["message"] == (
        f"surrogate_tree: held-out fidelity (accuracy) is {fidelity:.3f}, below 0.5"
    )
    assert results["explainers"]["surrogate_tree"]["ranking_tied"] is False


# -- the pieces, on hand-made arrays ------------------------------------------------------
def _data(n_features: int, stds: list[float]) -> DataSummary:
    return DataSummary(
        source="test",
        description="",
        modality="tabular",
        input_shape=[n_features],
        class_names=["a", "b"],
        feature_names=[f"f{i}" for i in range(n_features)],
        slice="all samples",
        n=4,
        batch_size=4,
        class_counts={"a": 2, "b": 2},
        feature_summary=[{"name": f"f{i}", "std": s} for i, s in enumerate(stds)],
    )


def _result(type_: str = "saliency") -> ExplainerResult:
    return ExplainerResult(id="e", type=type_, scope="local", status="ok")


def test_nan_and_constant_attributions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "CHUNK_ELEMENTS", 30)  # 10 samples a chunk
    nan = np.ones((300, 3), dtype=np.float32)
    nan[[5, 290], 1] = np.nan  # in two different chunks
    np.save(tmp_path / "nan.npy", nan)
    scan = scan_attributions(tmp_path / "nan.npy", "tabular")
    [warning] = attribution_warnings(_result(), scan, _data(3, [1, 1, 1]))
    assert (warning.code, warning.message) == (
        "attributions_nan",
        "e: attributions contain NaN or inf on 2 of 300 samples",
    )
    np.save(tmp_path / "constant.npy", np.full((4, 1, 2, 2), 0.25, dtype=np.float32))
    scan = scan_attributions(tmp_path / "constant.npy", "image")
    [warning] = attribution_warnings(_result(), scan, _data(4, [1] * 4))
    assert (warning.code, warning.message) == (
        "attributions_constant",
        "e: attributions are one constant value (0.25) for every sample and feature",
    )


def test_a_zero_column_that_never_varies_is_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "CHUNK_ELEMENTS", 3)  # one sample a chunk
    attr = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 0.0], [0.0, np.nan, 0.0]], dtype=np.float32)
    np.save(tmp_path / "a.npy", attr)
    scan = scan_attributions(tmp_path / "a.npy", "tabular")
    # f0 varies (std 1) and gets 0: warned; f2 is constant in the data: nothing to explain
    scan = replace(scan, non_finite_samples=0)  # (the NaN of f1 alone would be warned first)
    assert list(scan.zero_features) == [True, False, True]
    [warning] = attribution_warnings(_result("feature_ablation"), scan, _data(3, [1, 1, 0]))
    assert warning.message == "e: attributions are exactly zero on every sample for f0"
    assert warning.features == ["f0"]


def test_ties_that_make_the_top_k_arbitrary() -> None:
    assert tied_top(np.array([3.0, 3.0, 3.0, 1.0]), k=2) == 3  # the tie runs past k
    assert tied_top(np.array([3.0, 3.0, 1.0, 1.0]), k=2) == 0  # the top 2 is well defined
    assert tied_top(np.zeros(5), k=10) == 5  # every feature tied
    assert tied_top(np.array([2.0, 1.0, 0.5]), k=10) == 0
    [warning] = tie_warnings(_result("gradcam"), np.array([0.5] * 16 + [0.1] * 48), k=10)
    assert warning.message == "e: the top of the ranking is a tie (16 of 64 features share 0.5)"
    assert warning.action.startswith("a top 10 chosen from a tie is arbitrary")
    [warning] = tie_warnings(_result("surrogate_tree"), np.zeros(30), k=10)
    assert warning.message == (
        "e: no feature has any importance (all 30 features have importance 0)"
    )


# -- chance is one over the model's classes, not the slice's -----------------------------
TEN_CLASS_MODEL = """\
import torch
from torch import nn


class AlwaysModel(nn.Module):
    \"\"\"Ten logits; class ``predict`` always wins.\"\"\"

    def __init__(self, predict: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 10)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.bias.copy_(torch.eye(10)[predict])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)
"""


@pytest.mark.parametrize("predict", [1, 5])
def test_chance_counts_the_models_classes(tmp_path: Path, predict: int) -> None:
    """A 10-class model on a slice whose integer labels are 0 and 1: the data knows two
    classes, the model ten. Accuracy 0.3 beats guessing (1/10); 0.0 does not."""
    (tmp_path / "ten_class.py").write_text(TEN_CLASS_MODEL)
    rows = [f"{i % 3},{i % 5},{int(i % 10 < 3)}" for i in range(40)]  # 30% label 1
    (tmp_path / "pairs.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    body = f"""\
model:
  source: python
  class: ten_class:AlwaysModel
  init: {{predict: {predict}}}
  pythonpath: [{tmp_path}]
data:
  source: csv
  path: pairs.csv
  label: label
explainers:
  - type: saliency
report:
  formats: []
"""
    code, folder, output = audit(tmp_path, body)
    assert code == 0, output
    results = read_results(folder)
    assert results["data"]["class_names"] == ["0", "1"]
    if predict == 1:
        assert results["predictions"]["accuracy"] == pytest.approx(0.3)
        assert codes(results, "accuracy_at_chance") == [], output
        # the terminal agrees with the report's PASS WITH WARNINGS (zero saliency is left)
        assert [w["code"] for w in results["warnings"]] == ["attributions_zero"]
        assert output.strip().endswith("verdict: PASSED WITH 1 WARNING (exit 0)")
    else:
        assert output.strip().endswith("verdict: PASSED WITH 2 WARNINGS (exit 0)")
        [warning] = codes(results, "accuracy_at_chance")
        assert warning["message"] == (
            "accuracy on the slice is 0.000, at or below chance (1/10 = 0.100)"
        )


def test_chance_without_the_models_outputs_uses_the_data_classes() -> None:
    summary = PredictionSummary(
        n=4,
        accuracy=0.5,
        per_class_accuracy={"a": 1.0, "b": 0.0},
        confusion=[[2, 0], [2, 0]],
        mean_probability=0.9,
        targets="predicted",
        finite=True,
    )
    [warning] = health.accuracy_warnings(summary, _data(2, [1, 1]))
    assert warning.message == "accuracy on the slice is 0.500, at or below chance (1/2 = 0.500)"
    assert health.accuracy_warnings(summary, _data(2, [1, 1]), outputs=10) == []
