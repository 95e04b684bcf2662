"""`auditor run` end to end through the command line, on the example specs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch
from captum.attr import Occlusion
from conftest import read_results, run_cli
from safetensors.torch import load_file

from auditor.data.sklearn_source import load_arrays
from examples.models import DigitsCNN

ROOT = Path(__file__).resolve().parents[2]


def test_digits_audit_end_to_end(digits_spec: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "run",
        str(digits_spec),
        "--out",
        str(tmp_path),
        "--run-id",
        "r1",
        "--set",
        "data.slice.stop=96",
        "--set",
        "report.formats=[html]",
    )
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "digits-cnn" / "r1"
    assert f"report: {folder / 'report.html'}" in proc.stdout
    assert proc.stdout.strip().endswith("verdict: PASSED (exit 0)")
    assert (folder / "spec.yaml").read_bytes() == digits_spec.read_bytes()
    results = read_results(folder)
    assert results["status"] == "passed" and results["exit_code"] == 0
    assert results["data"]["n"] == 96 and results["data"]["input_shape"] == [1, 8, 8]

    # predictions equal the model's own outputs on the same samples
    x, y, _ = load_arrays("digits", "test")
    model = DigitsCNN(10)
    model.load_state_dict(load_file(ROOT / "models" / "digits_cnn.safetensors"))
    with torch.no_grad():
        expected = model.eval()(torch.as_tensor(x[:96])).numpy()
    logits = np.load(folder / "predictions.npy")
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    accuracy = float((expected.argmax(1) == y[:96]).mean())
    assert results["predictions"]["accuracy"] == accuracy
    assert results["checks"][0] == {
        "name": "model.accuracy",
        "kind": "metric",
        "severity": "error",
        "status": "pass",
        "value": accuracy,
        "threshold": ">= 0.9",
        "reason": f"{accuracy:.4g} is within bounds",
    }
    assert [c["status"] for c in results["checks"]] == ["pass"] * 4

    # every local explainer streamed a float32 file of the slice's shape
    local = ["saliency", "integrated_gradients", "gradcam", "occlusion", "guided_backprop"]
    global_ = ["surrogate_tree", "permutation_importance"]
    assert list(results["explainers"]) == local + global_
    for explainer_id, record in results["explainers"].items():
        assert record["status"] == "ok", record["error"]
        top = record["ranking"][0]
        assert abs(top["importance"]) == max(abs(r["importance"]) for r in record["ranking"])
        if explainer_id in global_:
            assert record["attribution_file"] is None
            continue
        attributions = np.load(folder / "attributions" / f"{explainer_id}.npy")
        assert attributions.dtype == np.float32 and attributions.shape == (96, 1, 8, 8)
        assert np.isfinite(attributions).all() and np.abs(attributions).sum() > 0
    # occlusion ran through the frozen copy (provenance) and equals Captum on the model
    occlusion = np.load(folder / "attributions" / "occlusion.npy")
    inputs, targets = torch.as_tensor(x[:96]), torch.as_tensor(expected.argmax(1))
    captum = Occlusion(model).attribute(
        inputs, sliding_window_shapes=(1, 1, 1), strides=(1, 1, 1), baselines=0.0, target=targets
    )
    np.testing.assert_allclose(occlusion, captum.numpy(), rtol=1e-4, atol=1e-5)
    ig = results["explainers"]["integrated_gradients"]
    assert ig["stats"]["convergence_delta"]["n"] == 96
    assert ig["metrics"]["completeness_error"]["mean"] < 0.01
    deletion = ig["metrics"]["deletion"]
    assert deletion["values"]["auc"] < deletion["values"]["random_auc"]
    assert (folder / "metrics" / "integrated_gradients.deletion.npy").exists()
    assert results["explainers"]["surrogate_tree"]["fidelity"]["accuracy"] > 0.5
    assert set(results["cross_metrics"]["agreement"]["matrix"]["labels"]) == set(local)

    # provenance
    prov = results["provenance"]
    assert prov["seed"] == 0 and prov["precision"] == "float32"
    assert prov["inference"] == "frozen TorchScript copy for forward passes without gradients"
    assert prov["overrides"] == ["data.slice.stop=96", "report.formats=[html]"]
    assert {"python", "torch", "torchvision", "captum", "shap", "scikit-learn", "auditor"} <= set(
        prov["versions"]
    )
    assert len(prov["weights_sha256"]) == 64 and len(prov["data_sha256"]) == 64

    suite = ET.parse(folder / "junit.xml").getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "0"


def test_tabular_audit_with_failing_checks(cancer_spec: Path, tmp_path: Path) -> None:
    """A check that fails gives exit 1, and junit.xml says which."""
    proc = run_cli(
        "run",
        str(cancer_spec),
        "--out",
        str(tmp_path),
        "--run-id",
        "r1",
        "-q",
        "--set",
        "report.formats=[]",
        "--set",
        "checks[0].min=0.99",  # the MLP's test accuracy is 0.958
    )
    assert proc.returncode == 1, proc.stderr
    folder = tmp_path / "breast-cancer-mlp" / "r1"
    results = read_results(folder)
    assert results["status"] == "failed"
    accuracy, ranking, completeness = results["checks"]
    assert accuracy["status"] == "fail"
    assert accuracy["reason"] == f"{accuracy['value']:.4g} is below the minimum 0.99"
    assert ranking["status"] == "pass" and completeness["status"] == "pass"
    ig = results["explainers"]["integrated_gradients"]
    names = [r["feature"] for r in ig["ranking"]]
    assert len(names) == 30 and "mean fractal dimension" not in names[:5]
    cases = {c.get("name"): c for c in ET.parse(folder / "junit.xml").getroot()}
    assert cases["model.accuracy"].find("failure") is not None
    assert cases["integrated_gradients top 5"].find("failure") is None


def test_must_not_include_fails_when_feature_is_in_top_k(cancer_spec: Path, tmp_path: Path) -> None:
    first = run_cli(
        "run",
        str(cancer_spec),
        "--out",
        str(tmp_path),
        "--run-id",
        "a",
        "-q",
        "--set",
        "report.formats=[]",
    )
    assert first.returncode == 0, first.stderr
    ranking = read_results(tmp_path / "breast-cancer-mlp" / "a")["explainers"][
        "integrated_gradients"
    ]["ranking"]
    top = ranking[2]["feature"]
    proc = run_cli(
        "run",
        str(cancer_spec),
        "--out",
        str(tmp_path),
        "--run-id",
        "b",
        "-q",
        "--set",
        "report.formats=[]",
        "--set",
        f"checks[1].must_not_include=[{top}]",
    )
    assert proc.returncode == 1
    check = read_results(tmp_path / "breast-cancer-mlp" / "b")["checks"][1]
    assert check["status"] == "fail"
    assert check["reason"] == f"{top} is ranked 3 (within the top 5)"


def test_invalid_spec_exits_2_without_traceback_or_folder(
    digits_spec: Path, tmp_path: Path
) -> None:
    proc = run_cli(
        "run", str(digits_spec), "--out", str(tmp_path), "--set", "explainers[1].params.n_steps=-3"
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: audits/digits_cnn.yaml:23:23 explainers[1].params.n_steps: "
        "Input should be greater than 0 (got -3) (value set with --set)\n"
    )
    assert not any(tmp_path.iterdir())


def test_unknown_layer_is_a_spec_error(digits_spec: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "run",
        str(digits_spec),
        "--out",
        str(tmp_path),
        "-q",
        "--set",
        "explainers[2].params.layer=features.9",
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: audits/digits_cnn.yaml:25:21 explainers[2].params.layer: unknown layer "
        "'features.9'. Did you mean: features.4? Layers: features, features.0, features.1, "
        "features.2, features.3, features.4, classifier, classifier.0, classifier.1, "
        "classifier.2, classifier.3 (value set with --set)\n"
    )
    assert "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())


def test_warning_checks_fail_only_with_fail_on_warning(digits_spec: Path, tmp_path: Path) -> None:
    strict = (
        *("--set", "explainers=[{type: saliency}]", "--set", "metrics=[]"),
        *("--set", "checks=[{metric: model.accuracy, min: 0.999, severity: warning}]"),
    )
    common = ("--set", "data.slice.stop=32", "--set", "report.formats=[]", "-q", *strict)
    lenient = run_cli("run", str(digits_spec), "--out", str(tmp_path), "--run-id", "a", *common)
    assert lenient.returncode == 0, lenient.stderr
    check = read_results(tmp_path / "digits-cnn" / "a")["checks"][0]
    assert (check["status"], check["severity"]) == ("fail", "warning")
    junit = ET.parse(tmp_path / "digits-cnn" / "a" / "junit.xml").getroot()
    assert junit.get("failures") == "0"
    assert junit[0].find("system-out").text.startswith("warning: ")
    strict_run = run_cli(
        "run",
        str(digits_spec),
        "--out",
        str(tmp_path),
        "--run-id",
        "b",
        "--fail-on",
        "warning",
        *common,
    )
    assert strict_run.returncode == 1
    junit = ET.parse(tmp_path / "digits-cnn" / "b" / "junit.xml").getroot()
    assert junit.get("failures") == "1"


def test_bfloat16_run_keeps_layer_names_and_reports_precision(
    digits_spec: Path, tmp_path: Path
) -> None:
    """precision: bfloat16 wraps the model in autocast; layer paths still name its modules."""
    proc = run_cli(
        "run", str(digits_spec), "--out", str(tmp_path), "--run-id", "bf", "-q",
        *("--set", "precision=bfloat16", "--set", "data.slice.stop=32"),
        *("--set", "explainers=[{type: gradcam, params: {layer: features.3}}, {type: saliency}]"),
        *("--set", "metrics=[]", "--set", "checks=[{metric: model.accuracy, min: 0.9}]"),
        *("--set", "report.formats=[]"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path / "digits-cnn" / "bf")
    assert results["provenance"]["precision"] == "bfloat16"
    assert results["provenance"]["inference"] == "eager"  # the fast copy is float32 only
    assert {r["status"] for r in results["explainers"].values()} == {"ok"}
    assert results["predictions"]["accuracy"] >= 0.9
