"""Failure isolation, determinism, resume after SIGKILL, reuse, non-finite outputs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, ClassVar

import counting_model
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import AUDITOR, ROOT, read_results, run_cli

from auditor import registries
from auditor.cli import cli
from auditor.data.sklearn_source import load_arrays
from auditor.explainers.base import Explainer

DIGITS = ROOT / "audits" / "digits_cnn.yaml"
HERE = Path(__file__).parent
NO_REPORT = ("--set", "report.formats=[]")
#: Only the model-accuracy check, no metrics: for tests about explainers and files.
LIGHT = ("--set", "metrics=[]", "--set", "checks=[{metric: model.accuracy, min: 0.9}]")


class AlwaysFails(Explainer):
    """An explainer that raises on its second batch (for the isolation test)."""

    name: ClassVar[str] = "always_fails_for_test"
    calls = 0

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        AlwaysFails.calls += 1
        if AlwaysFails.calls >= 2:
            raise ValueError("deliberate failure in batch 2")
        return torch.zeros_like(inputs)


@pytest.fixture
def failing_plugin() -> Any:
    registries.explainers.register(AlwaysFails)
    AlwaysFails.calls = 0
    yield AlwaysFails
    registries.explainers.unregister(AlwaysFails.name)


def _spec_with(tmp_path: Path, explainers: str, extra: str = "") -> Path:
    text = DIGITS.read_text()
    start = text.index("explainers:")
    end = text.index("report:")
    checks = "checks:\n  - metric: model.accuracy\n    min: 0.9\n"
    text = text[:start] + explainers + checks + text[end:] + extra
    text = text.replace("pythonpath: [..]", f"pythonpath: [{ROOT}]")
    text = text.replace("../models/", f"{ROOT}/models/")
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_failing_explainer_is_isolated(failing_plugin: Any, tmp_path: Path) -> None:
    spec = _spec_with(
        tmp_path,
        "explainers:\n  - type: saliency\n  - type: always_fails_for_test\n"
        "  - type: integrated_gradients\n    params: {n_steps: 8}\n",
    )
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(spec),
            "--out",
            str(tmp_path / "out"),
            "--run-id",
            "r",
            "-q",
            "--set",
            "report.formats=[html]",
        ],
    )
    assert result.exit_code == 3, result.output
    folder = tmp_path / "out" / "digits-cnn" / "r"
    results = read_results(folder)
    assert results["status"] == "error" and results["exit_code"] == 3
    failed = results["explainers"]["always_fails_for_test"]
    assert failed["status"] == "failed"
    assert failed["error"] == "ValueError: deliberate failure in batch 2"
    assert "Traceback (most recent call last)" in failed["traceback"]
    assert "deliberate failure" in failed["traceback"]
    for ok in ("saliency", "integrated_gradients"):
        assert results["explainers"][ok]["status"] == "ok"
        assert np.load(folder / "attributions" / f"{ok}.npy").shape == (256, 1, 8, 8)
    assert not (folder / "attributions" / "always_fails_for_test.npy").exists()
    html = (folder / "report.html").read_text()
    assert "ValueError: deliberate failure in batch 2" in html
    # the checks still ran and passed; the run is an error because an explainer failed
    assert [c["status"] for c in results["checks"]] == ["pass"]


def counted_run(tmp_path: Path, explainers: str, run_id: str) -> tuple[int, Path]:
    """Forward passes of a run of the digits audit with a counting model, and its folder."""
    spec = _spec_with(tmp_path, explainers)
    text = spec.read_text().replace("examples.models:DigitsCNN", "counting_model:CountingDigitsCNN")
    spec.write_text(text.replace(f"pythonpath: [{ROOT}]", f"pythonpath: [{ROOT}, {HERE}]"))
    args = ["run", str(spec), "--out", str(tmp_path / "out"), "--run-id", run_id, "-q"]
    before = counting_model.CountingDigitsCNN.calls
    result = CliRunner().invoke(cli, [*args, *NO_REPORT])
    assert result.exit_code == 0, result.output
    return counting_model.CountingDigitsCNN.calls - before, tmp_path / "out" / "digits-cnn" / run_id


def test_saliency_and_input_x_gradient_share_one_gradient_per_batch(tmp_path: Path) -> None:
    alone, _ = counted_run(tmp_path, "explainers:\n  - type: saliency\n", "alone")
    both, folder = counted_run(
        tmp_path,
        "explainers:\n  - type: saliency\n    params: {abs: false}\n  - type: input_x_gradient\n",
        "both",
    )
    assert alone > 0 and both == alone  # input x gradient cost no forward pass
    gradient = np.load(folder / "attributions" / "saliency.npy")
    x, _, _ = load_arrays("digits", "test")
    ixg = np.load(folder / "attributions" / "input_x_gradient.npy")
    np.testing.assert_array_equal(ixg, x[:256] * gradient)  # x * the very same gradient
    assert np.abs(gradient).max() > 0


def test_fail_fast_skips_the_rest(failing_plugin: Any, tmp_path: Path) -> None:
    spec = _spec_with(
        tmp_path, "explainers:\n  - type: always_fails_for_test\n  - type: saliency\n"
    )
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(spec),
            "--out",
            str(tmp_path),
            "--run-id",
            "r",
            "-q",
            "--fail-fast",
            *NO_REPORT,
        ],
    )
    assert result.exit_code == 3
    results = read_results(tmp_path / "digits-cnn" / "r")
    assert results["explainers"]["saliency"]["status"] == "skipped"
    assert results["explainers"]["saliency"]["error"] == "skipped: --fail-fast"


VOLATILE = {"run_id", "started", "finished", "seconds", "stage_seconds", "seconds_per_sample"}


def _stable(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _stable(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [_stable(v) for v in data]
    return data


def test_two_runs_are_identical(tmp_path: Path) -> None:
    for run_id in ("a", "b"):
        proc = run_cli(
            "run",
            str(DIGITS),
            "--out",
            str(tmp_path),
            "--run-id",
            run_id,
            "-q",
            "--set",
            "data.slice.stop=64",
            *NO_REPORT,
        )
        assert proc.returncode == 0, proc.stderr
    a, b = tmp_path / "digits-cnn" / "a", tmp_path / "digits-cnn" / "b"
    files = sorted(p.relative_to(a) for p in (a / "attributions").iterdir())
    assert [str(f) for f in files if f.suffix == ".npy"] == [
        "attributions/gradcam.npy",
        "attributions/guided_backprop.npy",
        "attributions/integrated_gradients.npy",
        "attributions/occlusion.npy",
        "attributions/saliency.npy",
    ]
    metrics = sorted(p.relative_to(a) for p in (a / "metrics").iterdir())
    assert len(metrics) >= 10
    for f in [*files, *metrics, Path("predictions.npy"), Path("gallery.npz")]:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert _stable(read_results(a)) == _stable(read_results(b))


def _progress(folder: Path, explainer: str) -> int:
    path = folder / "attributions" / f"{explainer}.progress.json"
    try:
        return int(json.loads(path.read_text())["batches"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_sigkill_then_resume_matches_uninterrupted_run(plugin_site: Path, tmp_path: Path) -> None:
    """Kill a run in the middle of an explainer, resume it, compare with a clean run.

    ``slow_gradient`` (tests/plugin_pkg) pauses after each batch so that the kill lands
    mid-explainer on any machine.
    """
    spec = _spec_with(
        tmp_path,
        "explainers:\n  - type: saliency\n  - type: slow_gradient\n    params: {delay: 0.1}\n"
        "  - type: integrated_gradients\n    params: {n_steps: 16}\n",
    )
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    args = ("--set", "data.batch_size=8", "--set", "data.slice.stop=160", *NO_REPORT, "-q")
    folder = tmp_path / "digits-cnn" / "killed"
    proc = subprocess.Popen(
        [str(AUDITOR), "run", str(spec), "--out", str(tmp_path), "--run-id", "killed", *args],
        cwd=ROOT,
        start_new_session=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while _progress(folder, "slow_gradient") < 3:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done = _progress(folder, "slow_gradient")
    assert 3 <= done < 20  # killed in the middle of the explainer (20 batches)
    # nothing that looks finished: no final array, no results, no report
    assert not (folder / "attributions" / "slow_gradient.npy").exists()
    assert (folder / "attributions" / "slow_gradient.npy.partial").exists()
    assert not (folder / "results.json").exists()
    assert not (folder / "attributions" / "integrated_gradients.npy").exists()
    saliency = folder / "attributions" / "saliency.npy"  # finished before the kill
    before = saliency.stat().st_mtime_ns

    def cli(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AUDITOR), "run", str(spec), *extra, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    resumed = cli("--resume", str(folder))
    assert resumed.returncode == 0, resumed.stderr
    assert saliency.stat().st_mtime_ns == before  # reused, not recomputed
    clean = cli("--out", str(tmp_path), "--run-id", "clean")
    assert clean.returncode == 0, clean.stderr
    other = tmp_path / "digits-cnn" / "clean"
    for name in ("saliency", "slow_gradient", "integrated_gradients"):
        a = (folder / "attributions" / f"{name}.npy").read_bytes()
        assert a == (other / "attributions" / f"{name}.npy").read_bytes(), name
    assert _stable(read_results(folder)) == _stable(read_results(other))
    assert not list((folder / "attributions").glob("*.partial"))
    assert not list((folder / "attributions").glob("*.progress.json"))


def test_reuse_copies_finished_attributions(tmp_path: Path) -> None:
    args = ("--set", "data.slice.stop=64", *NO_REPORT, *LIGHT, "-q")
    first = run_cli("run", str(DIGITS), "--out", str(tmp_path), "--run-id", "a", *args)
    assert first.returncode == 0
    a = tmp_path / "digits-cnn" / "a"
    second = run_cli(
        "run", str(DIGITS), "--out", str(tmp_path), "--run-id", "b", "--reuse", str(a), *args
    )
    assert second.returncode == 0, second.stderr
    b = tmp_path / "digits-cnn" / "b"
    results = read_results(b)
    for name, record in results["explainers"].items():
        if record["scope"] == "global":  # cheap, always recomputed
            continue
        assert record["reused"] == str(a), name
        assert (a / record["attribution_file"]).read_bytes() == (
            b / record["attribution_file"]
        ).read_bytes()
    assert (
        results["explainers"]["integrated_gradients"]["stats"]
        == read_results(a)["explainers"]["integrated_gradients"]["stats"]
    )
    # a changed parameter changes the cache key: that explainer is recomputed
    third = run_cli(
        "run",
        str(DIGITS),
        "--out",
        str(tmp_path),
        "--run-id",
        "c",
        "--reuse",
        str(a),
        "--set",
        "explainers[1].params.n_steps=8",
        *args,
    )
    assert third.returncode == 0
    reused = {
        k: v["reused"] for k, v in read_results(tmp_path / "digits-cnn" / "c")["explainers"].items()
    }
    assert reused == {
        "saliency": str(a),
        "integrated_gradients": None,
        "gradcam": str(a),
        "occlusion": str(a),
        "guided_backprop": str(a),
        "surrogate_tree": None,
        "permutation_importance": None,
    }


NAN_MODEL = """
import torch
from torch import nn


class NanNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) * float("nan")
"""


def test_non_finite_outputs_are_reported_before_explaining(tmp_path: Path) -> None:
    (tmp_path / "nan_model.py").write_text(NAN_MODEL)
    spec = tmp_path / "nan.yaml"
    spec.write_text(
        "version: 1\nname: nan\nmodel:\n  source: python\n  class: nan_model:NanNet\n"
        "  pythonpath: [.]\ndata: {source: sklearn, name: iris}\n"
        "explainers:\n  - type: saliency\nreport: {formats: []}\noutput: out\n"
    )
    proc = run_cli("run", str(spec), "--run-id", "r")
    assert proc.returncode == 3
    results = read_results(tmp_path / "out" / "nan" / "r")
    assert results["problems"] == ["the model's outputs contain NaN or inf on the slice"]
    assert results["predictions"]["finite"] is False
    assert results["explainers"]["saliency"]["status"] == "skipped"
    assert proc.stdout.strip().endswith("verdict: ERROR (exit 3)")


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_reuse_never_copies_from_outside_the_reused_run_folder(tmp_path: Path, where: str) -> None:
    """A tampered results.json whose attribution_file leaves its run folder (``../..`` or an
    absolute path) with a matching sha256: the file is not copied; the explainer is computed
    and the log says why."""
    spec = _spec_with(tmp_path, "explainers:\n  - type: saliency\n")
    args = ["--out", str(tmp_path / "out"), "--set", "data.slice.stop=32", *NO_REPORT]
    first = CliRunner().invoke(cli, ["run", str(spec), "--run-id", "a", "-q", *args])
    assert first.exit_code == 0, first.output
    a = tmp_path / "out" / "digits-cnn" / "a"
    planted = tmp_path / "planted.npy"  # what a tampered record points at
    np.save(planted, np.full((32, 1, 8, 8), 7.0, dtype=np.float32))
    results = read_results(a)
    record = results["explainers"]["saliency"]
    record["attribution_file"] = "../../../planted.npy" if where == "parent" else str(planted)
    record["attribution_sha256"] = hashlib.sha256(planted.read_bytes()).hexdigest()
    (a / "results.json").write_text(json.dumps(results))

    second = CliRunner().invoke(cli, ["run", str(spec), "--run-id", "b", "--reuse", str(a), *args])
    assert second.exit_code == 0, second.output
    b = tmp_path / "out" / "digits-cnn" / "b"
    assert read_results(b)["explainers"]["saliency"]["reused"] is None
    assert np.array_equal(
        np.load(b / "attributions" / "saliency.npy"), np.load(a / "attributions" / "saliency.npy")
    )
    assert (
        f"explain saliency: not reused: {a / 'results.json'} names an attribution file outside "
        f"its run folder ({record['attribution_file']!r}); computing it"
    ) in second.output
