"""Per-sample metrics as shards on Ray actors (``runner: {backend: ray}``), on a local Ray
cluster the tests start (loopback only).

A metric's batches run on the workers with the attributions the driver sends; the driver
joins the per-sample arrays and computes the summaries, so a Ray run's ``metrics/*.npy``
equal a local run's byte for byte and its summaries are the local numbers. A metric that
fails in a worker twice fails as it does locally.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from auditor.metrics.noise import SampleNoise
from auditor.runner import RunOptions, run

ROOT = Path(__file__).resolve().parents[2]
SHARDED = ("randomization_sanity", "infidelity", "sensitivity_max", "deletion")

#: The digits CNN, failing on inputs off the digits' grid of sixteenths (the perturbed
#: inputs of infidelity, max-sensitivity and stability) once ``off_grid`` is in its folder.
FAILING_MODEL = """
from pathlib import Path

import torch

from examples.models import DigitsCNN


class OffGridCNN(DigitsCNN):
    def __init__(self, markers: str, num_classes: int = 10) -> None:
        super().__init__(num_classes=num_classes)
        self.markers = Path(markers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.detach() * 16
        if (self.markers / "off_grid").exists() and (steps - steps.round()).abs().max() > 1e-3:
            raise ValueError("planted failure")
        return super().forward(x)
"""

METRICS = """
  - type: randomization_sanity
    params: {samples: 32}
    explainers: [saliency]
  - type: infidelity
    params: {samples: 48, n_perturb: 4}
  - type: sensitivity_max
    params: {samples: 16, n_perturb: 2}
    explainers: [saliency]
  - type: deletion
    params: {samples: 48, steps: 8}
    explainers: [integrated_gradients]
  - type: completeness_error
  - type: stability
    params: {samples: 48}
    explainers: [saliency]
  - type: sparseness
"""


EXPLAINERS = """
  - type: saliency
  - type: integrated_gradients
    params: {n_steps: 8}"""


def write_spec(
    tmp_path: Path, metrics: str, *, stop: int = 48, explainers: str = EXPLAINERS
) -> Path:
    (tmp_path / "markers").mkdir(exist_ok=True)
    (tmp_path / "off_grid_model.py").write_text(FAILING_MODEL)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
name: ray-metrics
seed: 0
model:
  source: python
  class: off_grid_model:OffGridCNN
  pythonpath: [{tmp_path}, {ROOT}]
  init: {{markers: {tmp_path / "markers"}}}
  weights: {ROOT / "models" / "digits_cnn.safetensors"}
data:
  source: sklearn
  name: digits
  split: test
  slice: {{start: 0, stop: {stop}}}
  batch_size: 16
explainers:{explainers}
metrics:{metrics}
report: {{formats: []}}
output: {tmp_path / "runs"}
"""
    )
    return spec


def audit(spec: Path, run_id: str, *overrides: str) -> Path:
    return run(spec, RunOptions(run_id=run_id, progress="quiet", overrides=overrides)).folder.path


def records(folder: Path) -> dict[str, dict[str, Any]]:
    """Every metric record of every explainer, by ``<explainer>.<metric>``."""
    found = json.loads((folder / "results.json").read_text())
    return {
        f"{name}.{metric}": record
        for name, explainer in found["explainers"].items()
        for metric, record in explainer["metrics"].items()
    }


def close(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Summary values equal within 1e-6 (None for undefined on both sides)."""
    assert a.keys() == b.keys()
    for key, value in a.items():
        other = b[key]
        if value is None or other is None:
            assert value is other, key
        else:
            assert math.isclose(value, other, rel_tol=1e-6, abs_tol=1e-6), (key, value, other)


@pytest.fixture(scope="module")
def runs(cluster: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One spec run locally, on Ray in shards of 16 samples (batches of 16) on 2 workers,
    and in shards of 32 on one."""
    spec = write_spec(tmp_path_factory.mktemp("metrics"), METRICS)
    one = ("runner.workers=1",)
    return {
        "local": audit(spec, "local"),
        "ray16": audit(spec, "ray16", "runner.backend=ray", "runner.shard_size=16"),
        "ray32": audit(spec, "ray32", "runner.backend=ray", "runner.shard_size=32", *one),
    }


def test_per_sample_metrics_on_ray_equal_a_local_run(runs: dict[str, Path]) -> None:
    """48 digits in batches of 16, shards of 16 on 2 workers: per-sample files byte-equal,
    summaries and curves the local numbers; the Ray extras in each sharded record."""
    local, on_ray = runs["local"], runs["ray16"]
    here, there = records(local), records(on_ray)
    assert here.keys() == there.keys()
    expected = {
        "saliency.randomization_sanity": 2,  # 32 samples: 2 batches, 2 shards
        "saliency.infidelity": 3,
        "integrated_gradients.infidelity": 3,
        "saliency.sensitivity_max": 1,
        "saliency.stability": 3,
        "integrated_gradients.deletion": 3,
        "integrated_gradients.completeness_error": 3,
    }
    assert {k for k, r in there.items() if "ray" in r} == set(expected)
    for name, record in there.items():
        assert record["status"] == here[name]["status"] == "ok", (name, record.get("error"))
        left = (local / here[name]["file"]).read_bytes()
        assert left == (on_ray / record["file"]).read_bytes(), name
        close(here[name]["values"], record["values"])
        for key in ("mean", "std"):
            assert math.isclose(here[name][key], record[key], rel_tol=1e-6, abs_tol=1e-9), name
        assert here[name].get("curves") == record.get("curves"), name
        assert here[name].get("note") == record.get("note"), name
        if name in expected:
            shards = record["ray"]
            assert (shards["workers"], shards["shards"], shards["retries"]) == (
                2,
                expected[name],
                [],
            ), name
            assert "ray" not in here[name]
    assert "ray" not in there["saliency.sparseness"]  # numpy on stored attributions: driver
    # One set of workers for both stages: the first explainer waited for them, no metric did.
    explainers = json.loads((on_ray / "results.json").read_text())["explainers"]
    assert explainers["saliency"]["extra"]["ray"]["startup_seconds"] > 0
    assert all(there[name]["ray"]["startup_seconds"] == 0 for name in expected)


def test_a_metric_that_fails_in_a_worker_twice_fails_as_locally(
    cluster: str, tmp_path: Path
) -> None:
    """Saliency passes stay on the grid; infidelity's perturbed inputs leave it and fail."""
    metrics = "\n  - type: infidelity\n    params: {samples: 16, n_perturb: 2}\n"
    metrics += "  - type: deletion\n"
    spec = write_spec(tmp_path, metrics, stop=16, explainers="\n  - type: saliency")
    (tmp_path / "markers" / "off_grid").touch()
    local = records(audit(spec, "local"))
    sets = ("runner.backend=ray", "runner.shard_size=16", "runner.workers=1")
    on_ray = records(audit(spec, "ray", *sets))
    failed = on_ray["saliency.infidelity"]
    assert failed["status"] == local["saliency.infidelity"]["status"] == "failed"
    assert failed["error"] == local["saliency.infidelity"]["error"] == "ValueError: planted failure"
    assert [r["attempt"] for r in failed["ray"]["retries"]] == [1, 2]
    assert failed["ray"]["retries"][0]["error"] == "ValueError: planted failure"
    assert on_ray["saliency.deletion"]["status"] == "ok"  # the other metrics still ran
    assert on_ray["saliency.deletion"]["ray"]["retries"] == []


def test_a_sample_value_does_not_depend_on_its_shard(runs: dict[str, Path]) -> None:
    """Shards of one batch on 2 workers or of two on one: the same per-sample values, noise
    included."""
    small, large = runs["ray16"], runs["ray32"]
    for name in ("saliency.infidelity", "saliency.stability", "saliency.sensitivity_max"):
        a, b = records(small)[name], records(large)[name]
        shards = (a["ray"]["shards"], b["ray"]["shards"])
        assert shards == ((1, 1) if name.endswith("max") else (3, 2)), name
        values = np.load(small / a["file"])
        assert values.tobytes() == np.load(large / b["file"]).tobytes(), name
        assert np.isfinite(values).all() and len(np.unique(values)) > len(values) // 2, name


def test_noise_draws_depend_on_the_sample_only() -> None:
    """A sample's perturbations are the same in any batch and however Captum splits the
    copies (``repeat_interleave`` layout): what makes values independent of the shard."""
    x = torch.arange(8 * 3, dtype=torch.float32).reshape(8, 3)
    whole = SampleNoise(0, "infidelity", np.arange(8)).draw(x.repeat_interleave(4, dim=0))
    tail = SampleNoise(0, "infidelity", np.arange(4, 8))
    part = torch.cat([tail.draw(x[4:].repeat_interleave(2, dim=0)) for _ in range(2)])
    expected = whole.reshape(8, 4, 3)[4:]  # samples 4-7, copies 0-3
    assert torch.equal(part.reshape(2, 4, 2, 3).transpose(0, 1).reshape(4, 4, 3), expected)
    other = SampleNoise(0, "stability", np.arange(8)).draw(x.repeat_interleave(4, dim=0))
    assert not torch.equal(other, whole)  # each metric draws its own noise


def test_time_per_sample_leaves_out_the_ray_start_up(runs: dict[str, Path]) -> None:
    """The first explainer waited for the workers: its per-sample time leaves that wait out,
    and the report's note says how much of its time it was."""
    from auditor.report.sections.summary import ray_note
    from auditor.results import Results

    results = Results.model_validate_json((runs["ray16"] / "results.json").read_text())
    first = results.explainers["saliency"]
    startup = first.extra["ray"]["startup_seconds"]
    assert startup > 0 and first.seconds is not None and first.seconds_per_sample is not None
    assert math.isclose(first.seconds_per_sample * 48, first.seconds - startup, rel_tol=1e-6)
    assert ray_note(first).startswith("On 2 Ray worker(s); the time includes ")
    second = results.explainers["integrated_gradients"]
    assert second.extra["ray"]["startup_seconds"] == 0
    assert ray_note(second) == "On 2 Ray worker(s)."
    local = Results.model_validate_json((runs["local"] / "results.json").read_text())
    assert ray_note(local.explainers["saliency"]) == ""
