"""Paths the user gives (SPEC, --out, --resume, --reuse, render's RUN_DIR) work relative,
absolute and through a symlink, from a working directory that is neither the repository
nor the spec's folder: each is resolved once, at the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import AUDITOR, ROOT, read_results

from auditor.cli import cli
from auditor.data.sklearn_source import load_arrays

TINY = f"""\
version: 1
name: tiny
seed: 0
model:
  source: python
  class: examples.models:DigitsCNN
  pythonpath: [{ROOT}]
  init: {{num_classes: 10}}
  weights: {ROOT}/models/digits_cnn.safetensors
data:
  source: sklearn
  name: digits
  split: test
  slice: {{start: 0, stop: 16}}
  batch_size: 8
explainers:
  - type: saliency
checks:
  - metric: model.accuracy
    min: 0.5
report:
  formats: []
output: out
"""

KINDS = ["relative", "absolute", "symlink"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run of the tiny audit, copied by the tests that need a run folder."""
    base = tmp_path_factory.mktemp("base")
    spec = base / "tiny.yaml"
    spec.write_text(TINY)
    result = CliRunner().invoke(cli, ["run", str(spec), "--out", str(base), "--run-id", "r", "-q"])
    assert result.exit_code == 0, result.output
    return base / "tiny" / "r"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: a folder of its own, with the spec one level beside it."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "tiny.yaml").write_text(TINY)
    (tmp_path / "work").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "work" / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


def given(work: Path, kind: str, relative: str) -> tuple[str, Path]:
    """The path as typed (``relative`` to ``work``, or absolute, or through ``link``) and
    the real folder it names. For ``symlink`` the target lies under ``real/``."""
    if kind == "relative":
        return relative, work / relative
    if kind == "absolute":
        return str(work / relative), work / relative
    return f"link/{relative}", work.parent / "real" / relative


def place(finished: Path, target: Path) -> Path:
    shutil.copytree(finished, target)
    return target


def cli_run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["run", *args, "-q"])


def assert_finished(result: Result, folder: Path) -> None:
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-2:] == [
        f"results: {folder / 'results.json'}",
        "verdict: PASSED (exit 0)",
    ]
    record = read_results(folder)["explainers"]["saliency"]
    assert record["status"] == "ok", record
    assert record["attribution_file"] == "attributions/saliency.npy"
    assert np.load(folder / record["attribution_file"]).shape == (16, 1, 8, 8)


@pytest.mark.parametrize("kind", KINDS)
def test_out(work: Path, kind: str) -> None:
    out, real = given(work, kind, "runs/a")
    result = cli_run("../specs/tiny.yaml", "--out", out, "--run-id", "r")
    assert_finished(result, real / "tiny" / "r")


def test_spec_relative_output_is_beside_the_spec(work: Path) -> None:
    result = cli_run("../specs/tiny.yaml", "--run-id", "r")
    assert_finished(result, work.parent / "specs" / "out" / "tiny" / "r")


@pytest.mark.parametrize("kind", KINDS)
def test_resume(work: Path, finished: Path, kind: str) -> None:
    typed, real = given(work, kind, "runs/tiny/r")
    folder = place(finished, real)
    # as a killed run leaves it: no results, saliency not finished
    (folder / "results.json").unlink()
    (folder / "attributions" / "saliency.npy").unlink()
    result = cli_run("--resume", typed)
    assert_finished(result, folder)
    assert (folder / "attributions" / "saliency.npy").read_bytes() == (
        finished / "attributions" / "saliency.npy"
    ).read_bytes()


@pytest.mark.parametrize("kind", KINDS)
def test_reuse(work: Path, finished: Path, kind: str) -> None:
    typed, real = given(work, kind, "runs/tiny/earlier")
    earlier = place(finished, real)
    result = cli_run("../specs/tiny.yaml", "--out", "runs", "--run-id", "r", "--reuse", typed)
    folder = work / "runs" / "tiny" / "r"
    assert_finished(result, folder)
    assert read_results(folder)["explainers"]["saliency"]["reused"] == str(earlier)


@pytest.mark.parametrize("kind", KINDS)
def test_render(work: Path, finished: Path, kind: str) -> None:
    typed, real = given(work, kind, "runs/tiny/r")
    folder = place(finished, real)
    result = CliRunner().invoke(cli, ["render", typed, "--format", "html"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"report: {folder / 'report.html'}\n"
    assert (folder / "report.html").stat().st_size > 0
    assert not os.path.islink(folder)


def test_an_out_that_cannot_hold_a_run_folder_is_a_usage_error(work: Path) -> None:
    (work / "taken").write_text("a file, not a folder\n")
    result = cli_run("../specs/tiny.yaml", "--out", "taken", "--run-id", "r")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: cannot create the run folder {work / 'taken' / 'tiny' / 'r'}: Not a directory\n"
    )


# -- paths inside the spec: relative to the spec's folder, whatever the cwd -------------
SELF_CONTAINED = """\
version: 1
name: beside
seed: 0
model:
  source: python
  class: beside_model:DigitsCNN
  pythonpath: [.]
  init: {num_classes: 10}
  weights: w.safetensors
data:
  source: tensors
  path: data/digits.npz
  batch_size: 8
explainers:
  - type: saliency
checks:
  - metric: model.accuracy
    min: 0.5
report:
  formats: []
"""


def _auditor(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A fresh process (no module cached from another test) in ``cwd``."""
    return subprocess.run(
        [str(AUDITOR), *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_relative_paths_inside_the_spec_from_other_working_directories(tmp_path: Path) -> None:
    """A project folder holds the spec, its model module (``pythonpath: [.]``), weights and
    data, all named relative to the spec. It runs from another folder with a relative
    --out, and a killed copy of the run resumes (without SPEC) from a third folder."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "models.py", project / "beside_model.py")
    shutil.copy(ROOT / "models" / "digits_cnn.safetensors", project / "w.safetensors")
    x, y, _ = load_arrays("digits", "test")
    np.savez(project / "data" / "digits.npz", x=x[:16], y=y[:16])
    (project / "spec.yaml").write_text(SELF_CONTAINED)
    for folder in ("cwd_a", "cwd_b"):
        (tmp_path / folder).mkdir()

    first = _auditor(tmp_path / "cwd_a", "run", "../project/spec.yaml", "--out", "runs", "-q")
    folder = tmp_path / "cwd_a" / "runs" / "beside"
    [run_dir] = [p for p in folder.iterdir() if p.is_dir()]  # index.jsonl beside it
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-2:] == [
        f"results: {run_dir / 'results.json'}",
        "verdict: PASSED (exit 0)",
    ]
    assert read_results(run_dir)["data"]["n"] == 16

    killed = place(run_dir, tmp_path / "cwd_a" / "runs" / "killed")
    (killed / "results.json").unlink()
    (killed / "attributions" / "saliency.npy").unlink()
    resumed = _auditor(tmp_path / "cwd_b", "run", "--resume", "../cwd_a/runs/killed", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[-1] == "verdict: PASSED (exit 0)"
    assert (killed / "attributions" / "saliency.npy").read_bytes() == (
        run_dir / "attributions" / "saliency.npy"
    ).read_bytes()
