"""``runner: {backend: ray}`` on a local Ray cluster the tests start (loopback only).

The local explainers run as shards on Ray actors; their attributions must equal a local
run's byte for byte (same batches, same per-sample seeds). A driver killed mid-run resumes
with the shards not yet written; a worker that dies is replaced and its shard retried; a
shard that fails twice fails its explainer with the error a local run gives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ray

from auditor.runner import RunOptions, run

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
AUDITOR = Path(sys.executable).parent / "auditor"
LOCAL = ("saliency", "integrated_gradients", "occlusion", "smoothgrad", "gradient_shap")


def write_spec(tmp_path: Path, explainers: str, *, stop: int = 96, batch: int = 16) -> Path:
    markers = tmp_path / "markers"
    markers.mkdir(exist_ok=True)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
name: ray-digits
seed: 0
model:
  source: python
  class: ray_test_model:MarkedDigitsCNN
  pythonpath: [{HERE}, {ROOT}]
  init: {{markers: {markers}}}
  weights: {ROOT / "models" / "digits_cnn.safetensors"}
data:
  source: sklearn
  name: digits
  split: test
  slice: {{start: 0, stop: {stop}}}
  batch_size: {batch}
explainers:
{explainers}
report: {{formats: []}}
output: {tmp_path / "runs"}
"""
    )
    return spec


def audit(spec: Path, run_id: str, *overrides: str) -> Path:
    outcome = run(spec, RunOptions(run_id=run_id, progress="quiet", overrides=overrides))
    return outcome.folder.path


def results(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text())


def same_attributions(a: Path, b: Path, names: tuple[str, ...]) -> None:
    for name in names:
        left = (a / "attributions" / f"{name}.npy").read_bytes()
        assert left == (b / "attributions" / f"{name}.npy").read_bytes(), name


def test_ray_shards_equal_a_local_run(cluster: str, tmp_path: Path) -> None:
    """Deterministic and stochastic explainers, 96 samples in shards of 32 on 2 workers."""
    spec = write_spec(
        tmp_path,
        "  - type: saliency\n  - type: integrated_gradients\n    params: {n_steps: 8}\n"
        "  - type: occlusion\n  - type: smoothgrad\n    params: {nt_samples: 4}\n"
        "  - type: gradient_shap\n    params: {n_samples: 4}\n  - type: surrogate_tree\n",
    )
    local = audit(spec, "local")
    on_ray = audit(spec, "ray", "runner.backend=ray", "runner.shard_size=32")
    same_attributions(local, on_ray, LOCAL)
    found = results(on_ray)
    for name in LOCAL:
        record = found["explainers"][name]
        ray_record = dict(record["extra"]["ray"])
        startup = ray_record.pop("startup_seconds")
        assert (startup > 0) == (name == LOCAL[0]), name  # the first explainer waits for it
        assert ray_record == {"workers": 2, "device": "cpu", "shards": 3, "retries": []}, name
        assert record["stats"] == results(local)["explainers"][name]["stats"], name
    assert found["explainers"]["surrogate_tree"]["status"] == "ok"  # global: on the driver
    assert found["provenance"]["runner"]["backend"] == "ray"
    assert found["provenance"]["versions"]["ray"] == ray.__version__
    assert "ray" not in results(local)["provenance"]["versions"]
    assert results(local)["provenance"]["runner"] is None


def test_a_dead_worker_is_replaced_and_its_shard_retried(cluster: str, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "  - type: saliency\n  - type: occlusion\n")
    local = audit(spec, "local")
    (tmp_path / "markers" / "die_once").touch()
    on_ray = audit(spec, "ray", "runner.backend=ray", "runner.shard_size=16")
    assert not (tmp_path / "markers" / "die_once").exists()  # a worker did die
    same_attributions(local, on_ray, ("saliency", "occlusion"))
    retries = results(on_ray)["explainers"]["saliency"]["extra"]["ray"]["retries"]
    assert len(retries) == 1 and retries[0]["attempt"] == 1
    assert retries[0]["error"].startswith("worker died")
    assert results(on_ray)["explainers"]["saliency"]["status"] == "ok"


def test_a_shard_that_fails_twice_fails_its_explainer_as_locally(
    cluster: str, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, "  - type: saliency\n  - type: occlusion\n", stop=32)
    (tmp_path / "markers" / "fail").touch()
    local = results(audit(spec, "local"))
    on_ray = results(audit(spec, "ray", "runner.backend=ray", "runner.shard_size=32"))
    saliency = on_ray["explainers"]["saliency"]
    assert saliency["status"] == local["explainers"]["saliency"]["status"] == "failed"
    assert saliency["error"] == local["explainers"]["saliency"]["error"]
    assert saliency["error"] == "ValueError: planted failure"
    assert [r["attempt"] for r in saliency["extra"]["ray"]["retries"]] == [1, 2]
    assert on_ray["explainers"]["occlusion"]["status"] == "ok"  # the others still ran
    assert on_ray["status"] == "error"


def actor_processes() -> list[int]:
    """Pids of live Ray actor processes of auditor (their title names ``AuditWorker``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"AuditWorker" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _progress(folder: Path) -> int:
    try:
        path = folder / "attributions" / "saliency.progress.json"
        return int(json.loads(path.read_text())["batches"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_a_killed_driver_resumes_with_the_shards_not_yet_written(
    cluster: str, tmp_path: Path
) -> None:
    """The CLI on the test's cluster: SIGKILL once 3 of 12 shards are written, then
    ``--resume``: only the remaining shards are computed and the result equals a local run."""
    spec = write_spec(tmp_path, "  - type: saliency\n", stop=96, batch=8)
    markers = tmp_path / "markers"
    (markers / "slow").touch()
    sets = ["--set", "runner.backend=ray", "--set", f"runner.address={cluster}"]
    sets += ["--set", "runner.shard_size=8", "--set", "runner.workers=1"]
    folder = tmp_path / "runs" / "ray-digits" / "killed"
    command = [str(AUDITOR), "run", str(spec), "--run-id", "killed", "-q", *sets]
    proc = subprocess.Popen(command, start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while _progress(folder) < 3:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while actor_processes():  # Ray stops the dead driver's actor; wait until it is gone
        assert time.monotonic() < deadline, "the killed driver's worker is still running"
        time.sleep(0.1)
    done = _progress(folder)
    assert 3 <= done < 12
    assert not (folder / "results.json").exists()
    (markers / "slow").unlink()
    (markers / "calls").touch()
    resumed = subprocess.run(
        [str(AUDITOR), "run", "--resume", str(folder), "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert len((markers / "calls").read_text().splitlines()) == 12 - done  # one pass a batch
    (markers / "calls").unlink()
    local = audit(spec, "local")
    same_attributions(local, folder, ("saliency",))
    assert results(folder)["explainers"]["saliency"]["extra"]["ray"]["shards"] == 12 - done


def test_workers_the_cluster_cannot_place_fail_at_once(cluster: str, tmp_path: Path) -> None:
    """A GPU per worker on a cluster without one: Ray would wait for ever; the run says why."""
    spec = write_spec(tmp_path, "  - type: saliency\n  - type: occlusion\n", stop=16)
    sets = ("runner.backend=ray", "runner.resources_per_worker={CPU: 1, GPU: 1}")
    found = results(audit(spec, "nogpu", *sets))
    for name in ("saliency", "occlusion"):
        error = found["explainers"][name]["error"]
        assert error.startswith("RunError: ray: no worker fits the cluster: each asks for "), error
        assert "{CPU: 1, GPU: 1}, the cluster has {CPU: 2" in error
