"""--resume runs the spec and --set values the run started with (SPEC may be left out), and
refuses, exit 2, a different spec, a different --set, changed weights or a changed data
slice, saying what differs (it used to mix them and fail with shape errors)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import ROOT, read_results
from safetensors.numpy import load_file, save_file

from auditor.cli import cli
from auditor.data.sklearn_source import load_arrays
from auditor.hashing import sha256_array, sha256_file
from auditor.resume import RunInputs, resume_notice
from auditor.run_folder import RunFolder

TINY = """\
version: 1
name: tiny
seed: 0
model:
  source: python
  class: examples.models:DigitsCNN
  pythonpath: [{root}]
  init: {{num_classes: 10}}
  weights: weights.safetensors
data:
  source: tensors
  path: digits.npz
  slice: {{start: 0, stop: 16}}
  batch_size: 8
explainers:
  - type: saliency
report:
  formats: []
output: out
"""


def digits(n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    x, y, _ = load_arrays("digits", "test")
    return x[:n].astype(np.float32), y[:n].astype(np.int64)


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """The tiny audit with its own copy of the weights and the data beside it."""
    shutil.copyfile(ROOT / "models" / "digits_cnn.safetensors", tmp_path / "weights.safetensors")
    x, y = digits()
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.format(root=ROOT))
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["run", *args, "-q"])


def start(spec: Path, *overrides: str) -> Path:
    """A run of ``spec``, left as a killed run leaves it (no results, saliency unfinished)."""
    out = spec.parent / "out"
    result = invoke(str(spec), "--out", str(out), "--run-id", "r", *overrides)
    assert result.exit_code == 0, result.output
    folder = out / "tiny" / "r"
    (folder / "results.json").unlink()
    (folder / "attributions" / "saliency.npy").unlink()
    return folder


def assert_refused(result: Result, *messages: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr == "".join(f"error: {m}\n" for m in messages)
    assert result.stdout == ""


def test_resume_uses_the_runs_own_overrides(spec: Path) -> None:
    folder = start(spec, "--set", "data.slice.stop=32")
    assert json.loads((folder / "inputs.json").read_text())["overrides"] == ["data.slice.stop=32"]
    result = invoke(str(spec), "--resume", str(folder))  # no --set: the run's are used
    assert result.exit_code == 0, result.output
    results = read_results(folder)
    assert results["data"]["n"] == 32
    assert results["provenance"]["overrides"] == ["data.slice.stop=32"]
    assert np.load(folder / "attributions" / "saliency.npy").shape == (32, 1, 8, 8)


def test_resume_without_spec_runs_the_spec_as_run(spec: Path) -> None:
    folder = start(spec, "--set", "data.batch_size=4")
    spec.write_text(spec.read_text().replace("stop: 16", "stop: 40"))  # edited since
    result = invoke("--resume", str(folder))
    assert result.exit_code == 0, result.output
    results = read_results(folder)
    assert results["data"]["n"] == 16
    assert results["data"]["batch_size"] == 4
    assert results["provenance"]["spec_sha256"] == sha256_file(folder / "spec.yaml")


def test_a_different_set_value_is_refused(spec: Path) -> None:
    folder = start(spec, "--set", "data.slice.stop=32")
    before = sorted(p.name for p in folder.rglob("*"))
    result = invoke(
        str(spec),
        "--resume",
        str(folder),
        "--set",
        "data.slice.stop=64",
        "--set",
        "seed=3",
        "--set",
        "data.slice.stop = 32",  # the same as the run's: fine
    )
    assert_refused(
        result,
        f"--resume {folder}: --set data.slice.stop=64 differs from the run's data.slice.stop=32",
        f"--resume {folder}: --set seed=3 was not given to the run "
        "(it ran with the spec's own seed)",
    )
    assert sorted(p.name for p in folder.rglob("*")) == before  # nothing touched


def test_a_different_spec_is_refused(spec: Path) -> None:
    folder = start(spec)
    other = spec.with_name("other.yaml")
    other.write_text(spec.read_text().replace("stop: 16", "stop: 64"))
    assert_refused(
        invoke(str(other), "--resume", str(folder)),
        f"--resume {folder}: {other} differs from the run's spec.yaml at line 13: "
        "'  slice: {start: 0, stop: 64}' where the run has '  slice: {start: 0, stop: 16}' "
        "(leave out SPEC to resume with the spec as run)",
    )
    longer = spec.with_name("longer.yaml")
    longer.write_text(spec.read_text() + "description: more\n")
    assert_refused(
        invoke(str(longer), "--resume", str(folder)),
        f"--resume {folder}: {longer} differs from the run's spec.yaml at line 20: "
        "'description: more' where the run has the end of the file "
        "(leave out SPEC to resume with the spec as run)",
    )


def test_changed_weights_are_refused(spec: Path) -> None:
    folder = start(spec)
    weights = spec.parent / "weights.safetensors"
    before = sha256_file(weights)
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + np.float32(0.01)
    save_file(tensors, weights)
    assert_refused(
        invoke("--resume", str(folder)),
        f"--resume {folder}: the model's weights changed since the run started "
        f"(sha256 {before[:12]} then, {sha256_file(weights)[:12]} now)",
    )
    assert not (folder / "attributions" / "saliency.npy").exists()


def test_a_changed_data_slice_is_refused(spec: Path) -> None:
    folder = start(spec)
    before = json.loads((folder / "inputs.json").read_text())["data_sha256"]
    x, y = digits()
    x[3] = 0.0  # one sample of the slice changed in the file
    np.savez(spec.parent / "digits.npz", x=x, y=y)
    digest = hashlib.sha256()
    for begin in range(0, 16, 8):  # as predict hashes the slice: batch by batch
        sha256_array(x[begin : begin + 8], digest)
    now = digest.hexdigest()
    assert_refused(
        invoke(str(spec), "--resume", str(folder)),
        f"--resume {folder}: the data slice changed since the run started "
        f"(sha256 {before[:12]} then, {now[:12]} now)",
    )
    assert not (folder / "attributions" / "saliency.npy").exists()
    assert not (folder / "results.json").exists()


def test_a_folder_without_inputs_needs_its_spec(spec: Path) -> None:
    folder = start(spec)
    (folder / "inputs.json").unlink()  # as an older auditor left it
    assert_refused(
        invoke("--resume", str(folder)),
        f"--resume {folder}: the folder does not record which spec file it ran "
        "(no inputs.json: made by an older auditor); give that SPEC too",
    )
    result = invoke(str(spec), "--resume", str(folder))
    assert result.exit_code == 0, result.output
    assert read_results(folder)["data"]["n"] == 16


def test_run_needs_a_spec_or_resume() -> None:
    assert_refused(invoke(), "missing SPEC: auditor run SPEC, or auditor run --resume RUN_DIR")


def test_resume_without_spec_says_what_it_runs_first(spec: Path) -> None:
    """Resuming trusts the folder's spec.yaml (it may name Python code, like any spec): the
    first line says which spec and --set values run, before anything is loaded."""
    folder = start(spec, "--set", "data.batch_size=4", "--set", "description=two words")
    notice = (
        f"resuming {folder} with its spec as run ({spec}) and --set data.batch_size=4 "
        "--set 'description=two words'"
    )
    weights = spec.parent / "weights.safetensors"
    weights.rename(spec.parent / "away")
    result = CliRunner().invoke(cli, ["run", "--resume", str(folder)])
    assert result.exit_code == 2, result.output  # the weights are missing: said first anyway
    assert result.stderr.splitlines()[0].split("] ", 1)[1] == notice
    (spec.parent / "away").rename(weights)
    result = CliRunner().invoke(cli, ["run", "--resume", str(folder)])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].split("] ", 1)[1] == notice
    assert "load model" in lines[1]
    assert "resuming" not in invoke("--resume", str(folder)).stderr  # -q: no progress at all
    assert resume_notice(RunFolder.open(folder), RunInputs(spec=str(spec))) == (
        f"resuming {folder} with its spec as run ({spec}) and no --set"
    )


def _bomb() -> str:
    return (
        "[&a [x, x, x, x, x, x, x, x, x]"
        + "".join(
            f", &{n} [{', '.join([f'*{p}'] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "]"
    )


def test_set_values_given_to_resume_are_read_with_the_spec_bounds(spec: Path) -> None:
    """--set values compared with the run's are parsed as the run parsed them: an alias bomb
    is refused at the alias (it was expanded) and deep nesting is a spec error (it was a
    RecursionError, an internal error)."""
    folder = start(spec, "--set", "data.slice.stop=32")
    assert_refused(
        invoke("--resume", str(folder), "--set", f"data.slice.stop={_bomb()}"),
        "--set data.slice.stop: YAML aliases repeat more than 10,000 values in all (*d stands "
        "for 7,381); write the values out instead (at column 161 of the value)",
    )
    deep = "[" * 5000 + "]" * 5000
    assert_refused(
        invoke("--resume", str(folder), "--set", f"data.slice.stop={deep}"),
        "--set data.slice.stop: values are nested more than 100 levels deep (at column 101 of "
        "the value)",
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            b'{"spec": "/x.yaml",',
            "not JSON: Expecting property name enclosed in double quotes at line 1, column 20",
        ),
        (b"", "not JSON: Expecting value at line 1, column 1"),
        (b'{"spec": "caf\xe9"}', "not UTF-8 text: byte 0xe9"),
        (b'["spec"]', "expected a JSON object, got a list"),
        (b'{"overrides": []}', "no 'spec'"),
        (b'{"spec": 3}', "'spec' is not an absolute path: 3"),
        (b'{"spec": "tiny.yaml"}', "'spec' is not an absolute path: \"tiny.yaml\""),
        (
            b'{"spec": "/t.yaml", "overrides": "seed=1"}',
            "'overrides' is not a list of texts: \"seed=1\"",
        ),
        (b'{"spec": "/t.yaml", "overrides": [1]}', "'overrides' is not a list of texts: [1]"),
        (b'{"spec": "/t.yaml", "weights_sha256": 5}', "'weights_sha256' is not text: 5"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON: nested too deep"),
        (b" " * (1024 * 1024 + 1), "larger than 1 MB"),
    ],
    ids=[
        "cut-short",
        "empty",
        "latin-1",
        "list",
        "no-spec",
        "spec-number",
        "spec-relative",
        "overrides-text",
        "overrides-numbers",
        "hash-number",
        "nested",
        "huge",
    ],
)
def test_an_unreadable_inputs_json_is_refused(spec: Path, content: bytes, reason: str) -> None:
    """A corrupt inputs.json was an internal error (JSONDecodeError, KeyError, TypeError)."""
    folder = start(spec)
    (folder / "inputs.json").write_bytes(content)
    for args in (("--resume", str(folder)), (str(spec), "--resume", str(folder))):
        assert_refused(invoke(*args), f"--resume {folder}: inputs.json is not readable ({reason})")


def test_the_folders_spec_is_read_bounded_and_located(spec: Path) -> None:
    """The run folder's spec.yaml is read as any spec file: bounded in size, UTF-8 located,
    errors naming the folder's copy (it was read whole, and bad bytes were an internal
    error); its relative paths still resolve from the original spec's folder."""
    folder = start(spec)
    copy = folder / "spec.yaml"
    copy.write_bytes(spec.read_bytes().replace(b"name: tiny", b"name: t\xe9ny"))
    assert_refused(
        invoke("--resume", str(folder)),
        f"{copy}:2:8 the spec file is not UTF-8 text: byte 0xe9 (invalid continuation byte); "
        "save it as UTF-8",
    )
    copy.write_bytes(b"# " + b"x" * (4 * 1024 * 1024) + b"\n")
    assert_refused(
        invoke("--resume", str(folder)), f"spec file {copy} is larger than 4 MB; is it a spec?"
    )
    copy.write_text(TINY.format(root=ROOT).replace("batch_size: 8", "batch_size: [8"))
    assert_refused(
        invoke("--resume", str(folder)),
        f"{copy}:15:11 YAML syntax error: expected ',' or ']', but got ':'",
    )
    copy.write_text(TINY.format(root=ROOT))
    result = invoke("--resume", str(folder))
    assert result.exit_code == 0, result.output
