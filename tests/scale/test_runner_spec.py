"""``runner:`` in the spec: bad values are located errors (exit 2), Ray missing is named
with the install command, and the schema lists every key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from auditor.cli import cli
from auditor.runner import RunOptions, run

ROOT = Path(__file__).resolve().parents[2]
AUDITOR = Path(sys.executable).parent / "auditor"
DIGITS = ROOT / "audits" / "digits_cnn.yaml"


def validate(tmp_path: Path, runner: str) -> Result:
    spec = tmp_path / "spec.yaml"
    text = DIGITS.read_text().replace("../", f"{ROOT}/")
    spec.write_text(text + f"runner: {runner}\n")
    return CliRunner().invoke(cli, ["validate", str(spec)])


@pytest.mark.parametrize(
    ("runner", "message"),
    [
        ("{backend: dask}", "runner.backend: Input should be 'local' or 'ray'"),
        ("{backend: ray, workers: 0}", "runner.workers: Input should be greater than or equal"),
        ("{shard_size: -5}", "runner.shard_size: Input should be greater than or equal to 1"),
        ("{resources_per_worker: {CPU: -1}}", "resources must be named and >= 0: CPU"),
        ("{backend: ray, nodes: 3}", "unknown key 'nodes'"),
        ("{backend: ray, working_dir: no/such/dir}", "runner.working_dir:"),
    ],
)
def test_a_bad_runner_is_a_located_error(tmp_path: Path, runner: str, message: str) -> None:
    result = validate(tmp_path, runner)
    assert result.exit_code == 2, result.output
    line = len(DIGITS.read_text().splitlines()) + 1  # the appended runner line
    assert f"spec.yaml:{line}:" in result.stderr
    assert message in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_ray_missing_names_the_extra_to_install(tmp_path: Path) -> None:
    """A Python without Ray (import of ray made to fail) refuses backend: ray at validation."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(DIGITS.read_text().replace("../", f"{ROOT}/") + "runner: {backend: ray}\n")
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from auditor.cli import main\n"
        f"sys.argv = ['auditor', 'validate', {str(spec)!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "runner.backend: Ray is not installed here: pip install 'auditor[ray]'" in proc.stderr
    assert validate(tmp_path, "{backend: ray}").exit_code == 0  # here it is installed


def test_the_schema_lists_runner_and_device() -> None:
    proc = subprocess.run([str(AUDITOR), "schema"], capture_output=True, text=True, check=True)
    schema = json.loads(proc.stdout)
    assert {"runner", "device"} <= set(schema["properties"])
    runner = schema["$defs"]["RunnerSpec"]["properties"]
    assert set(runner) == {
        "backend",
        "address",
        "workers",
        "shard_size",
        "resources_per_worker",
        "working_dir",
    }
    assert runner["backend"]["enum"] == ["local", "ray"]


def test_an_unreachable_address_fails_the_local_explainers_at_once(tmp_path: Path) -> None:
    """ray.init would retry an address where nothing listens for ever: the run says so."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(DIGITS.read_text().replace("../", f"{ROOT}/"))
    sets = [
        "runner.backend=ray",
        "runner.address=127.0.0.1:1",
        "data.slice.stop=16",
        "explainers=[{type: saliency}, {type: occlusion}]",
        "metrics=[]",
        "checks=[]",
        "report.formats=[]",
    ]
    outcome = run(spec, RunOptions(out=tmp_path / "runs", progress="quiet", overrides=tuple(sets)))
    assert outcome.exit_code == 3
    for name in ("saliency", "occlusion"):
        record = outcome.results.explainers[name]
        assert record.status == "failed"
        assert record.error == (
            "RunError: runner.address 127.0.0.1:1: no Ray cluster answers there "
            "(Connection refused)"
        )


def test_runner_against_the_rest_of_the_spec_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    """device: cuda with GPU-less Ray workers, and a working_dir without the spec: exit 2 at
    the runner's lines, no run folder."""
    spec = tmp_path / "spec.yaml"
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    spec.write_text(
        DIGITS.read_text().replace("../", f"{ROOT}/")
        + f"device: cuda\nrunner: {{backend: ray, working_dir: {elsewhere}}}\n"
    )
    result = CliRunner().invoke(cli, ["run", str(spec), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "runner.resources_per_worker: device is cuda but the Ray workers get no GPU" in (
        result.stderr
    )
    assert f"runner.working_dir: runner.working_dir {elsewhere} does not hold the spec" in (
        result.stderr
    )
    assert not (tmp_path / "runs").exists()
