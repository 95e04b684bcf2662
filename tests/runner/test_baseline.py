"""Baselines in a spec (issue 15): ``baseline: previous | none | <run folder>`` and the
checks against the baseline run (ranking_stability, metric_change, model_unchanged,
data_unchanged): pass, fail (exit 1) and skipped without a baseline (exit 0, JUnit
``<skipped>``); a bad baseline path is exit 2 before anything is written.

Real runs of the breast-cancer MLP on 32 samples (saliency, integrated gradients with 16
steps, deletion), made with the CLI into one output folder: r1 (no earlier run), r2 (same
weights, previous = r1), r3 (the first layer's weights perturbed, previous = r2), r4 (24
samples, the baseline named by its folder: r1).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from conftest import ROOT, read_results, run_cli

from auditor.errors import SpecError
from auditor.spec.load import validate_text
from tests.diff.test_diff import perturbed_weights

SPEC = ROOT / "audits" / "breast_cancer_mlp.yaml"
CHECKS = (
    "checks=[{ranking_stability: integrated_gradients, min_kendall_tau: 0.99}, "
    "{metric_change: saliency.deletion, max_increase: 0, max_decrease: 0}, "
    "{model_unchanged: true}, {data_unchanged: true}]"
)


def _sets(*extra: str) -> list[str]:
    sets = [
        "data.slice.stop=32",
        "report.formats=[]",
        "explainers=[{type: saliency}, {type: integrated_gradients, "
        "params: {n_steps: 16, baseline: mean}}]",
        "metrics=[{type: deletion}]",
        "baseline=previous",
        CHECKS,
        *extra,
    ]
    return [arg for value in sets for arg in ("--set", value)]


def _run(out: Path, run_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("run", str(SPEC), "--out", str(out), "--run-id", run_id, *_sets(*extra))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """r1..r4 (see the module's docstring): each run's process and folder."""
    tmp = tmp_path_factory.mktemp("baseline")
    perturbed = perturbed_weights(tmp)
    out = tmp / "runs"
    audit = out / "breast-cancer-mlp"
    procs = {
        "r1": _run(out, "r1"),
        "r2": _run(out, "r2"),
        "r3": _run(out, "r3", f"model.weights={perturbed}"),
    }
    relative = os.path.relpath(audit / "r1", SPEC.parent)  # relative to the spec file
    procs["r4"] = _run(
        out,
        "r4",
        "data.slice.stop=24",
        f"baseline={relative}",
        "checks=[{data_unchanged: true}, {model_unchanged: true}, "
        "{ranking_stability: saliency, min_top_k_overlap: 0.5, name: saliency top 10}, "
        "{metric_change: model.accuracy, max_decrease: 0.5, relative: true}]",
    )
    return {"procs": procs, "audit": audit}


def _checks(folder: Path) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in read_results(folder)["checks"]}


def _junit(folder: Path) -> ET.Element:
    return ET.fromstring((folder / "junit.xml").read_text())


def test_without_an_earlier_run_the_baseline_checks_are_skipped(chain: dict[str, Any]) -> None:
    proc, folder = chain["procs"]["r1"], chain["audit"] / "r1"
    assert proc.returncode == 0, proc.stderr
    results = read_results(folder)
    assert results["status"] == "passed" and results["baseline"] is None
    assert [c["status"] for c in results["checks"]] == ["skipped"] * 4
    reason = f"no earlier finished run of 'breast-cancer-mlp' in {chain['audit']}"
    assert {c["reason"] for c in results["checks"]} == {reason}
    suite = _junit(folder)
    assert suite.get("skipped") == "4" and suite.get("failures") == "0"
    assert [s.get("message") for s in suite.iter("skipped")] == [reason] * 4
    assert f"check 'model unchanged' skipped: {reason}" in proc.stderr
    assert not (folder / "diff").exists()


def test_baseline_none_skips_the_checks(tmp_path: Path) -> None:
    proc = _run(tmp_path, "only", "baseline=none")
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "breast-cancer-mlp" / "only"
    reasons = {c["status"]: c["reason"] for c in read_results(folder)["checks"]}
    assert reasons == {"skipped": "the spec has no baseline (baseline: none)"}
    assert len(list(_junit(folder).iter("skipped"))) == 4


def test_previous_is_the_last_finished_run_and_same_weights_pass(chain: dict[str, Any]) -> None:
    proc, folder = chain["procs"]["r2"], chain["audit"] / "r2"
    assert proc.returncode == 0, proc.stderr
    results = read_results(folder)
    first = read_results(chain["audit"] / "r1")
    assert results["baseline"] == {
        "run_id": "r1",
        "path": str((chain["audit"] / "r1").resolve()),
        "weights_sha256": first["provenance"]["weights_sha256"],
        "data_sha256": first["provenance"]["data_sha256"],
        "spec_sha256": first["provenance"]["spec_sha256"],
        "diff": "diff",
        "error": None,
    }
    checks = _checks(folder)
    assert {c["status"] for c in checks.values()} == {"pass"}
    assert checks["integrated_gradients ranking stability"]["value"] == 1.0
    assert checks["saliency.deletion change"]["value"] == 0.0
    assert checks["model unchanged"]["value"] == first["provenance"]["weights_sha256"]
    diff = json.loads((folder / "diff" / "diff.json").read_text())
    assert (diff["before"]["run_id"], diff["after"]["run_id"]) == ("r1", "r2")
    assert sorted(p.name for p in (folder / "diff").iterdir()) == ["diff.json"]  # formats: []
    assert _junit(folder).get("skipped") is None


def test_perturbed_weights_fail_the_baseline_checks(chain: dict[str, Any]) -> None:
    proc, folder = chain["procs"]["r3"], chain["audit"] / "r3"
    assert proc.returncode == 1, proc.stderr
    results, before = read_results(folder), read_results(chain["audit"] / "r2")
    assert results["status"] == "failed" and results["exit_code"] == 1
    assert results["baseline"]["run_id"] == "r2"  # the last finished run, not r1
    checks = _checks(folder)
    diff = json.loads((folder / "diff" / "diff.json").read_text())
    tau = next(r for r in diff["rankings"] if r["explainer"] == "integrated_gradients")
    stability = checks["integrated_gradients ranking stability"]
    assert stability["status"] == "fail"
    assert stability["value"] == tau["kendall_tau"] < 0.99
    change = checks["saliency.deletion change"]
    deletion = [
        r["explainers"]["saliency"]["metrics"]["deletion"]["mean"] for r in (before, results)
    ]
    assert change["status"] == "fail" and deletion[1] != deletion[0]
    assert change["value"] == pytest.approx(deletion[1] - deletion[0], abs=1e-12)
    model = checks["model unchanged"]
    assert model["status"] == "fail"
    assert model["value"] == results["provenance"]["weights_sha256"]
    assert before["provenance"]["weights_sha256"][:12] in model["reason"]
    assert checks["data unchanged"]["status"] == "pass"
    suite = _junit(folder)
    assert suite.get("failures") == "3"
    failed = [case.get("name") for case in suite if case.find("failure") is not None]
    assert failed == [
        "integrated_gradients ranking stability",
        "saliency.deletion change",
        "model unchanged",
    ]
    # The diff in the run folder shows the run's final verdict and baseline checks.
    assert diff["after"]["status"] == "failed"
    after = {c["name"]: c["after"] for c in diff["checks"]}
    assert after == {name: c["status"] for name, c in checks.items()}


def test_a_named_baseline_folder_and_another_slice(chain: dict[str, Any]) -> None:
    proc, folder = chain["procs"]["r4"], chain["audit"] / "r4"
    assert proc.returncode == 1, proc.stderr
    results, before = read_results(folder), read_results(chain["audit"] / "r1")
    assert results["baseline"]["run_id"] == "r1"
    checks = _checks(folder)
    assert checks["data unchanged"]["status"] == "fail"
    assert checks["model unchanged"]["status"] == "pass"
    diff = json.loads((folder / "diff" / "diff.json").read_text())
    ranking = next(r for r in diff["rankings"] if r["explainer"] == "saliency")
    assert checks["saliency top 10"]["value"] == ranking["top_k_overlap"] >= 0.5
    assert checks["saliency top 10"]["status"] == "pass"
    accuracy = [r["predictions"]["accuracy"] for r in (before, results)]
    relative = checks["model.accuracy change"]
    assert relative["value"] == pytest.approx((accuracy[1] - accuracy[0]) / accuracy[0])
    assert relative["status"] == "pass" and relative["threshold"].endswith("(relative)")


@pytest.mark.parametrize("make", ["missing", "unfinished"])
def test_a_bad_baseline_path_is_exit_2_before_anything_is_written(
    tmp_path: Path, make: str
) -> None:
    target = tmp_path / "old-run"
    if make == "unfinished":
        target.mkdir()
        (target / "spec.yaml").write_text(SPEC.read_text())
    out = tmp_path / "runs"
    proc = _run(out, "x", f"baseline={target}")
    assert proc.returncode == 2, proc.stderr
    why = "does not exist" if make == "missing" else "did not finish (no results.json in it)"
    assert f"baseline: baseline {target} {why}" in proc.stderr
    assert not out.exists()


def test_a_baseline_check_naming_an_unknown_explainer_is_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    proc = _run(out, "x", "checks=[{ranking_stability: saliancy, min_kendall_tau: 0.5}]")
    assert proc.returncode == 2, proc.stderr
    assert "checks[0].ranking_stability" in proc.stderr
    assert "Did you mean: saliency?" in proc.stderr
    assert not out.exists()


def _spec(checks: str, baseline: str = "none") -> str:
    text = SPEC.read_text()
    head = text[: text.index("checks:")]
    return head + f"checks: {checks}\nbaseline: {baseline}\n"


@pytest.mark.parametrize(
    ("checks", "baseline", "message"),
    [
        (
            "[{ranking_stability: saliency, min_kendal_tau: 0.7}]",
            "none",
            "unknown key 'min_kendal_tau'. Did you mean: min_kendall_tau?",
        ),
        (
            "[{ranking_stability: saliency}]",
            "none",
            "needs 'min_kendall_tau', 'min_top_k_overlap' or both",
        ),
        ("[{metric_change: model.accuracy}]", "none", "needs 'max_increase', 'max_decrease'"),
        ("[{model_unchanged: false}]", "none", "Input should be True"),
        ("[{data_unchanged: true, severity: fatal}]", "none", "'error' or 'warning'"),
        (
            "[{ranking_stabilty: saliency, min_kendall_tau: 0.5}]",
            "none",
            "'model_unchanged', 'data_unchanged'. Did you mean: ranking_stability?",
        ),
        ("[]", "previus", "use previous, none or a run folder. Did you mean: previous?"),
    ],
)
def test_spec_errors_of_baseline_keys(checks: str, baseline: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_text(_spec(checks, baseline), SPEC)
    assert message in str(caught.value)


def test_the_schemas_have_the_new_keys() -> None:
    proc = run_cli("schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    defs = schema["$defs"]
    assert schema["properties"]["baseline"]["default"] == "none"
    assert {"min_kendall_tau", "min_top_k_overlap"} <= set(
        defs["RankingStabilityCheck"]["properties"]
    )
    assert {"max_increase", "max_decrease", "relative"} <= set(
        defs["MetricChangeCheck"]["properties"]
    )
    assert "model_unchanged" in defs["ModelUnchangedCheck"]["properties"]
    assert "data_unchanged" in defs["DataUnchangedCheck"]["properties"]
    results = json.loads(run_cli("schema", "--results").stdout)
    assert "skipped" in results["$defs"]["CheckResult"]["properties"]["status"]["enum"]
    assert "baseline" in results["properties"]


def test_validate_names_the_line_of_a_baseline_check_on_an_unknown_explainer(
    tmp_path: Path,
) -> None:
    """``auditor validate`` (not only ``run``) checks the names in baseline checks."""
    spec = tmp_path / "audit.yaml"
    text = _spec(
        "[{ranking_stability: saliancy, min_kendall_tau: 0.5}, "
        "{metric_change: saliency.delation, max_decrease: 0.1}]"
    )
    spec.write_text(text.replace("models/", str(ROOT / "models") + "/"))
    proc = run_cli("validate", str(spec))
    assert proc.returncode == 2, proc.stderr
    line = text.splitlines().index(next(x for x in text.splitlines() if "saliancy" in x)) + 1
    assert f"audit.yaml:{line}:" in proc.stderr
    assert "checks[0].ranking_stability: check names explainer 'saliancy'" in proc.stderr
    assert "checks[1].metric_change" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_bad_baseline_does_not_hide_the_other_errors() -> None:
    """``baseline`` is a setting: with it wrong the rest of the spec is still checked."""
    with pytest.raises(SpecError) as caught:
        validate_text(
            _spec("[{ranking_stability: saliancy, min_kendall_tau: 0.5}]", "previus"), SPEC
        )
    text = str(caught.value)
    assert "Did you mean: previous?" in text
    assert "check names explainer 'saliancy'" in text


@pytest.mark.parametrize(("value", "ok"), [(0, True), (5, True), (-1, False), (1001, False)])
def test_report_trend_is_a_spec_key(value: int, ok: bool) -> None:
    text = SPEC.read_text().replace("report:", f"report:\n  trend: {value}", 1)
    assert f"trend: {value}" in text
    if ok:
        assert validate_text(text, SPEC).spec.report.trend == value
    else:
        with pytest.raises(SpecError, match=r"report\.trend"):
            validate_text(text, SPEC)
