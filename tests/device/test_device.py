"""``device:``: resolution and its errors, the CPU run unchanged, provenance; and, where a
CUDA device is present, CUDA results against the CPU's (skipped with a reason otherwise)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from auditor.device import (
    CUBLAS_OP,
    OnDevice,
    cpu_model,
    describe_device,
    device_label,
    memory_rows,
    model_device,
    nondeterministic_ops,
    precision_issues,
    resolve_device,
)
from auditor.explainers.passes import rows_per_pass
from auditor.runner import RunOptions, run

ROOT = Path(__file__).resolve().parents[2]
AUDITOR = Path(sys.executable).parent / "auditor"
CUDA = torch.cuda.is_available()
NEEDS_CUDA = pytest.mark.skipif(not CUDA, reason="needs a CUDA device (torch sees none here)")
CPU_ONLY = pytest.mark.skipif(CUDA, reason="on a machine without CUDA only")

#: The deterministic explainers whose CUDA maps must equal the CPU's within float error.
DETERMINISTIC = ("saliency", "integrated_gradients", "gradcam", "occlusion", "guided_backprop")
STOCHASTIC = ("smoothgrad", "gradient_shap")

DIGITS = f"""\
version: 1
name: device
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
  slice: {{start: 0, stop: 32}}
  batch_size: 16
explainers:
  - type: saliency
  - type: integrated_gradients
    params: {{n_steps: 8}}
  - type: gradcam
    params: {{layer: features.3}}
  - type: occlusion
  - type: guided_backprop
  - type: smoothgrad
    params: {{nt_samples: 4}}
  - type: gradient_shap
    params: {{n_samples: 4}}
report:
  formats: []
output: runs
"""


def audit(tmp_path: Path, run_id: str, *overrides: str, spec: str = DIGITS) -> Path:
    """Run the spec in-process; the run folder."""
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    options = RunOptions(out=tmp_path / "runs", run_id=run_id, overrides=overrides)
    outcome = run(path, replace_progress(options))
    assert outcome.exit_code == 0, outcome.results.problems
    return outcome.folder.path


def replace_progress(options: RunOptions) -> RunOptions:
    options.progress = "quiet"
    return options


def attributions(folder: Path, name: str) -> np.ndarray:
    return np.load(folder / "attributions" / f"{name}.npy")


def provenance(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "results.json").read_text())["provenance"]


# -- resolution ----------------------------------------------------------------------------
def test_cpu_is_the_cpu_and_auto_is_the_first_cuda_device_when_there_is_one() -> None:
    assert resolve_device("cpu") == (torch.device("cpu"), [])
    expected = torch.device("cuda", 0) if CUDA else torch.device("cpu")
    assert resolve_device("auto") == (expected, [])


def test_auto_picks_the_cpu_for_inputs_that_run_there_and_cuda_is_refused_for_them() -> None:
    assert resolve_device("auto", cpu_only="text") == (torch.device("cpu"), [])
    device, issues = resolve_device("cuda:0", cpu_only="text")
    assert device == torch.device("cpu")
    assert [(i.message, i.loc) for i in issues] == [
        ("text data runs on the CPU only (yet); use cpu or auto", ("device",))
    ]


@CPU_ONLY
@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_cuda_without_a_cuda_device_is_an_issue_at_device(name: str) -> None:
    device, issues = resolve_device(name)
    assert device == torch.device("cpu")
    assert len(issues) == 1 and issues[0].loc == ("device",)
    expected = (
        "this torch is built without CUDA"
        if torch.version.cuda is None
        else f"torch (built for CUDA {torch.version.cuda}) sees no CUDA device"
    )
    assert issues[0].message == f"{expected}; use cpu or auto"


@NEEDS_CUDA
def test_a_cuda_index_beyond_the_devices_is_an_issue_naming_them() -> None:
    count = torch.cuda.device_count()
    device, issues = resolve_device(f"cuda:{count}")
    assert device == torch.device("cpu")
    assert issues[0].loc == ("device",)
    assert issues[0].message.startswith(f"cuda:{count} is not one of the {count} CUDA device")
    assert resolve_device("cuda") == (torch.device("cuda", 0), [])


def test_float16_needs_a_cuda_device() -> None:
    issues = precision_issues("float16", torch.device("cpu"))
    assert [i.loc for i in issues] == [("precision",)]
    assert "CUDA device only" in issues[0].message
    assert precision_issues("bfloat16", torch.device("cpu")) == []
    assert precision_issues("float16", torch.device("cuda", 0)) == []


@CPU_ONLY
def test_run_with_cuda_on_a_cpu_machine_exits_2_at_the_device_line(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(DIGITS.replace("seed: 0\n", "seed: 0\ndevice: cuda\n"))
    proc = subprocess.run(
        [str(AUDITOR), "run", str(spec)], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: spec.yaml:4:9 device: torch (built for CUDA {torch.version.cuda}) sees no "
        "CUDA device; use cpu or auto"
    ]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_float16_on_the_cpu_exits_2_at_precision(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(DIGITS.replace("seed: 0\n", "seed: 0\nprecision: float16\ndevice: cpu\n"))
    proc = subprocess.run(
        [str(AUDITOR), "run", str(spec)], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: spec.yaml:4:12 precision: precision float16 runs on a CUDA device only; this "
        "run's device is cpu: use bfloat16 or float32 there"
    ]
    assert not (tmp_path / "runs").exists()


# -- the device's description, memory, nondeterministic ops ---------------------------------
def test_the_cpu_is_described_by_its_model_name() -> None:
    info = describe_device(torch.device("cpu"))
    assert info["type"] == "cpu" and info["name"] == cpu_model() and info["name"]
    assert info["cores"] >= 1
    assert device_label(torch.device("cpu")) == "cpu"


def test_passes_on_the_cpu_are_sized_for_its_caches_not_its_memory() -> None:
    assert memory_rows(torch.device("cpu"), 1000) is None
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    # the CPU rule: at most ROW_ELEMENTS (2**22) input elements a pass, 64 a row
    assert rows_per_pass(model, torch.zeros(2, 1, 8, 8)) == 2**22 // 64


def test_ops_without_a_deterministic_implementation_are_listed_once_each() -> None:
    text = (
        "{} does not have a deterministic implementation, but you set "
        "'torch.use_deterministic_algorithms(True, warn_only=True)'."
    )
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with nondeterministic_ops() as found:
            for op in ("scatter_add_cuda_kernel", "index_put_", "scatter_add_cuda_kernel"):
                warnings.warn(text.format(op), UserWarning, stacklevel=1)
            warnings.warn(
                "Deterministic behavior was enabled ... but this operation is not "
                "deterministic because it uses CuBLAS and you have CUDA >= 10.2.",
                UserWarning,
                stacklevel=1,
            )
            warnings.warn("other warnings are shown as before", UserWarning, stacklevel=1)
    assert found == ["scatter_add_cuda_kernel", "index_put_", CUBLAS_OP]
    assert [str(w.message) for w in shown] == ["other warnings are shown as before"]


def test_on_device_moves_inputs_to_the_model_and_outputs_back_with_gradients() -> None:
    model = nn.Linear(3, 2)
    wrapped = OnDevice(model, torch.device("cpu"), None)
    x = torch.randn(4, 3, requires_grad=True)
    out = wrapped(x)
    assert torch.equal(out, model(x)) and out.device == x.device
    (grad,) = torch.autograd.grad(out[:, 1].sum(), x)
    assert torch.equal(grad, model.weight[1].expand(4, 3))
    assert wrapped.wrapped_model is model and model_device(wrapped) == torch.device("cpu")
    reduced = OnDevice(model, torch.device("cpu"), torch.bfloat16)(x)  # autocast there
    assert reduced.dtype == torch.float32 and not torch.equal(reduced, out)
    torch.testing.assert_close(reduced, out, atol=0.05, rtol=0.05)


# -- runs ------------------------------------------------------------------------------------
@CPU_ONLY
def test_device_cpu_is_the_default_run_here_and_provenance_says_so(tmp_path: Path) -> None:
    default = audit(tmp_path, "auto")
    forced = audit(tmp_path, "cpu", "device=cpu")
    for name in (*DETERMINISTIC, *STOCHASTIC):
        assert np.array_equal(attributions(default, name), attributions(forced, name)), name
    for folder in (default, forced):
        p = provenance(folder)
        assert p["device"] == "cpu"
        assert p["device_info"]["type"] == "cpu" and p["device_info"]["name"] == cpu_model()
        assert p["nondeterministic_ops"] == []
        assert p["inference"] == "frozen TorchScript copy for forward passes without gradients"


@NEEDS_CUDA
def test_cuda_attributions_equal_the_cpus_and_repeat_exactly(tmp_path: Path) -> None:
    cpu = audit(tmp_path, "cpu", "device=cpu")
    cuda = audit(tmp_path, "cuda", "device=cuda")
    again = audit(tmp_path, "again", "device=cuda")
    for name in DETERMINISTIC:
        np.testing.assert_allclose(
            attributions(cuda, name), attributions(cpu, name), rtol=1e-4, atol=1e-4, err_msg=name
        )
    for name in STOCHASTIC:  # the same draws (made on the CPU) on both devices
        np.testing.assert_allclose(
            attributions(cuda, name), attributions(cpu, name), rtol=1e-3, atol=1e-3, err_msg=name
        )
        first, second = attributions(cuda, name), attributions(again, name)
        if provenance(again)["nondeterministic_ops"]:  # atomics may sum in another order
            np.testing.assert_allclose(first, second, rtol=1e-6, atol=1e-7, err_msg=name)
        else:
            assert np.array_equal(first, second), name
    p = provenance(cuda)
    assert p["device"] == f"cuda:0 ({torch.cuda.get_device_name(0)})"
    info = p["device_info"]
    assert info["type"] == "cuda" and info["cuda"] == torch.version.cuda
    assert 0 < info["memory_free"] <= info["memory_total"]


@NEEDS_CUDA
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_reduced_precision_runs_under_cuda_autocast(tmp_path: Path, precision: str) -> None:
    folder = audit(tmp_path, precision, "device=cuda", f"precision={precision}")
    reference = audit(tmp_path, "float32", "device=cuda")
    logits = np.load(folder / "predictions.npy")
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    full = np.load(reference / "predictions.npy")
    assert not np.array_equal(logits, full)  # autocast ran: reduced precision on the way
    assert np.abs(logits - full).max() < 0.05 * np.ptp(full)
    assert (logits.argmax(1) == full.argmax(1)).mean() >= 0.95
    assert provenance(folder)["precision"] == precision


@NEEDS_CUDA
def test_passes_on_cuda_are_sized_by_free_memory() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).cuda()
    rows = rows_per_pass(model, torch.zeros(2, 1, 8, 8, device="cuda"))
    # 4 bytes for each of twice the leaf outputs (64 + 10) and twice the input (64) a row
    assert rows == memory_rows(torch.device("cuda", 0), 4 * (148 + 128)) == 2**16
    big = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.Flatten(), nn.LazyLinear(10)).cuda()
    big(torch.zeros(1, 3, 224, 224, device="cuda"))
    per_row = 4 * (2 * (64 * 224 * 224 * 2 + 10) + 2 * 3 * 224 * 224)
    rows = rows_per_pass(big, torch.zeros(1, 3, 224, 224, device="cuda"))
    expected = memory_rows(torch.device("cuda", 0), per_row)
    assert expected is not None and 1 < expected < 2**16
    assert abs(rows - expected) <= 1  # free memory moves by the test's own input
