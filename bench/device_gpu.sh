#!/usr/bin/env bash
# Issue 16 (device: cuda) on a lent GPU machine (an H200 host, 16 cores): one script, < 8 min.
#
# 1. tests/device on the GPU (the CUDA tests CI skips);
# 2. the digits audit (audits/digits_cnn.yaml, metrics included) with device=cuda and
#    device=cpu: attributions compared (max abs / rel difference, allclose 1e-4), metrics,
#    stage times, provenance (device, driver, nondeterministic ops); bfloat16 and float16
#    autocast runs on cuda;
# 3. a resnet18 audit (random weights, torchvision, nothing downloaded) on 224x224 generated
#    images: cuda against cpu on a few images, then throughput on cuda: Integrated Gradients'
#    path points per second against the GPU's plain forward + input-gradient backward at IG's
#    own pass size (same deterministic, TF32-off settings as the run; target >= 70%).
# Writes $OUT/device_gpu.md, $OUT/device_gpu.json, $OUT/pytest.log, $OUT/nvidia-smi.txt.
#
# Python: the repo's .venv when it runs there; else the machine's python3 (torch,
# torchvision) with the missing pure-Python packages carried as wheels in .whl/ (see the
# device tool's README), made here with:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl captum pydantic pydantic-core annotated-types typing-inspection \
#     ruamel.yaml grandalf
# and run as: run(command="bash bench/device_gpu.sh", carry=[".whl"], timeout_s=540).
# A dry run of the logic on a machine without a GPU (small sizes, cpu against cpu):
#   DEVICE=cpu DIGITS_STOP=64 N_CPU=2 N_IMAGES=4 STEPS=4 SKIP_PYTEST=1 OUT=/tmp/out \
#     bash bench/device_gpu.sh
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch, captum, pydantic" 2>/dev/null; then
    PY=.venv/bin/python
elif [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
    PY=python3
else
    make install || exit 1  # needs the package index: not on a lent machine
    PY=.venv/bin/python
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.is_available() and torch.cuda.get_device_name(0))"

set -o pipefail
if [ -z "${SKIP_PYTEST:-}" ]; then
    timeout 200 "$PY" -m pytest -q -p no:cacheprovider tests/device 2>&1 | tee "$OUT/pytest.log"
    echo "pytest exit: $?"
fi

timeout 330 "$PY" - "$OUT" <<'PYTHON'
"""Digits and resnet18 audits on cuda against cpu, and IG throughput on cuda."""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from auditor import registries
from auditor.device import exact_float32
from auditor.explainers.passes import rows_per_pass
from auditor.runner import RunOptions, deterministic_algorithms, run

OUT = Path(sys.argv[1])
DEVICE = os.environ.get("DEVICE", "cuda")  # cpu: a dry run of this script without a GPU
GPU = torch.device("cuda", 0) if DEVICE == "cuda" else torch.device("cpu")


def sync() -> None:
    if GPU.type == "cuda":
        torch.cuda.synchronize()


RUNS = Path("/tmp/device_runs")
ROOT = Path.cwd()
RUNS.mkdir(parents=True, exist_ok=True)
summary: dict = {"device": DEVICE, "torch": torch.__version__}
lines = ["# device: cuda on a lent GPU (bench/device_gpu.sh)", ""]


def audit(spec: Path, run_id: str, *overrides: str) -> tuple[Path, dict]:
    start = time.perf_counter()
    options = RunOptions(out=RUNS, run_id=run_id, overrides=overrides, progress="quiet")
    outcome = run(spec, options)
    seconds = time.perf_counter() - start
    results = json.loads((outcome.folder.path / "results.json").read_text())
    print(f"{spec.name} {run_id}: exit {outcome.exit_code}, {seconds:.1f} s", flush=True)
    return outcome.folder.path, {"exit_code": outcome.exit_code, "seconds": seconds, **results}


def compare(a: Path, b: Path, names: list[str]) -> dict:
    out = {}
    for name in names:
        x = np.load(a / "attributions" / f"{name}.npy")
        y = np.load(b / "attributions" / f"{name}.npy")
        diff = np.abs(x - y)
        out[name] = {
            "max_abs": float(diff.max()),
            "max_rel": float((diff / np.maximum(np.abs(y), 1e-6)).max()),
            "scale": float(np.abs(y).max()),
            "allclose_1e-4": bool(np.allclose(x, y, rtol=1e-4, atol=1e-4)),
        }
    return out


def local_ids(results: dict) -> list[str]:
    return [k for k, e in results["explainers"].items() if e["scope"] == "local"]


def table(rows: dict) -> list[str]:
    text = ["| explainer | max abs diff | max rel diff | max abs value | allclose 1e-4 |"]
    text.append("|---|---|---|---|---|")
    for name, r in rows.items():
        text.append(
            f"| {name} | {r['max_abs']:.2e} | {r['max_rel']:.2e} | {r['scale']:.3g} | "
            f"{'yes' if r['allclose_1e-4'] else 'NO'} |"
        )
    return text


# -- 1. digits: cuda against cpu ----------------------------------------------------------
digits = ROOT / "audits" / "digits_cnn.yaml"
fmt = ("report.formats=[]",)
if os.environ.get("DIGITS_STOP"):  # a dry run's smaller slice
    fmt += (f"data.slice.stop={os.environ['DIGITS_STOP']}",)
cpu_dir, cpu = audit(digits, "digits-cpu", "device=cpu", *fmt)
cuda_dir, cuda = audit(digits, "digits-cuda", f"device={DEVICE}", *fmt)
again_dir, _ = audit(digits, "digits-cuda-again", f"device={DEVICE}", *fmt)
rows = compare(cuda_dir, cpu_dir, local_ids(cpu))
same = {n: bool(r["max_abs"] == 0.0) for n, r in compare(cuda_dir, again_dir, local_ids(cpu)).items()}
metrics = {}
for key, e in cpu["explainers"].items():
    for metric, value in (e.get("metrics") or {}).items():
        other = (cuda["explainers"][key].get("metrics") or {}).get(metric)
        if isinstance(value, dict) and isinstance(other, dict):
            value, other = value.get("mean"), other.get("mean")
        if isinstance(value, (int, float)) and isinstance(other, (int, float)):
            metrics[f"{key}.{metric}"] = (value, other)
summary["digits"] = {
    "cpu_exit": cpu["exit_code"], "cuda_exit": cuda["exit_code"],
    "cpu_seconds": cpu["seconds"], "cuda_seconds": cuda["seconds"],
    "cpu_stages": cpu["provenance"]["stage_seconds"], "cuda_stages": cuda["provenance"]["stage_seconds"],
    "attributions": rows, "cuda_repeats_exactly": same, "metrics_cpu_cuda": metrics,
    "provenance": {k: cuda["provenance"][k] for k in ("device", "device_info", "nondeterministic_ops", "inference")},
    "checks_equal": [c["status"] for c in cpu["checks"]] == [c["status"] for c in cuda["checks"]],
}
for precision in ("bfloat16", "float16") if DEVICE == "cuda" else ("bfloat16",):
    _, reduced = audit(digits, f"digits-{precision}", f"device={DEVICE}", f"precision={precision}", *fmt)
    summary["digits"][precision] = {"exit": reduced["exit_code"], "seconds": reduced["seconds"]}
lines += [f"Device: {cuda['provenance']['device']}; info: `{json.dumps(cuda['provenance']['device_info'])}`", ""]
lines += ["## Digits audit (audits/digits_cnn.yaml), cuda against cpu", ""]
lines += [f"exit codes cpu {cpu['exit_code']}, cuda {cuda['exit_code']}; run seconds cpu "
          f"{cpu['seconds']:.1f}, cuda {cuda['seconds']:.1f}; checks' statuses equal: "
          f"{summary['digits']['checks_equal']}; cuda repeats exactly: {same}", ""]
lines += table(rows) + [""]
lines += [f"Nondeterministic ops (cuda): {cuda['provenance']['nondeterministic_ops']}", ""]
lines += ["| metric | cpu | cuda |", "|---|---|---|"]
lines += [f"| {k} | {a:.6g} | {b:.6g} |" for k, (a, b) in metrics.items()] + [""]
lines += [f"bfloat16 / float16 on cuda: {summary['digits']['bfloat16']} / {summary['digits'].get('float16')}", ""]
print("\n".join(lines), flush=True)

# -- 2. resnet18, 224x224: cuda against cpu, then throughput ------------------------------
N_CPU, N_CUDA = int(os.environ.get("N_CPU", 16)), int(os.environ.get("N_IMAGES", 256))
STEPS, BATCH = int(os.environ.get("STEPS", 32)), 64
data = RUNS / "images.pt"
generator = torch.Generator().manual_seed(0)
images = torch.randn(N_CUDA, 3, 224, 224, generator=generator)
torch.save({"inputs": images, "labels": torch.randint(0, 1000, (N_CUDA,), generator=generator)}, data)
spec = RUNS / "resnet18.yaml"
spec.write_text(f"""\
version: 1
name: resnet18
seed: 0
model: {{source: torchvision, arch: resnet18}}
data: {{source: tensors, path: {data}, modality: image, batch_size: {BATCH}}}
explainers:
  - type: integrated_gradients
    params: {{n_steps: {STEPS}}}
  - type: saliency
  - type: gradcam
    params: {{layer: layer4}}
  - type: occlusion
    params: {{window: [32, 32], stride: [32, 32]}}
report: {{formats: []}}
output: {RUNS}
""")
small = f"data.slice={{start: 0, stop: {N_CPU}}}"
r_cpu_dir, r_cpu = audit(spec, "resnet-cpu", "device=cpu", small)
r_cuda_dir, r_cuda = audit(spec, "resnet-cuda-small", f"device={DEVICE}", small)
r_rows = compare(r_cuda_dir, r_cpu_dir, local_ids(r_cpu))
r_full_dir, r_full = audit(spec, "resnet-cuda", f"device={DEVICE}")
ig_seconds = r_full["explainers"]["integrated_gradients"]["seconds"]
audit_rate = N_CUDA * STEPS / ig_seconds

# IG's own pass size on this device, then plain forward + input-gradient backward at it
import torchvision  # noqa: E402

with deterministic_algorithms():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval().to(GPU)
    exact_float32()
    for p in model.parameters():
        p.requires_grad_(False)
    x = images[:BATCH].to(GPU)
    rows = rows_per_pass(model, x)
    samples = max(1, min(BATCH, rows))
    pass_rows = samples * max(1, rows // samples)
    points = torch.randn(pass_rows, 3, 224, 224, device=GPU)
    targets = torch.zeros(pass_rows, dtype=torch.long, device=GPU)

    def fwd_bwd() -> None:
        p = points.detach().requires_grad_(True)
        score = model(p).gather(1, targets.view(-1, 1)).sum()
        torch.autograd.grad(score, p)

    times = []
    for i in range(8 if GPU.type == "cuda" else 3):
        sync()
        t = time.perf_counter()
        fwd_bwd()
        sync()
        if i >= 2 or GPU.type == "cpu":
            times.append(time.perf_counter() - t)
    plain_rate = pass_rows / statistics.median(times)

    # IG alone (explainer.explain on cuda inputs of one batch), without the run around it
    cls = registries.explainers.get("integrated_gradients")
    from auditor.explainers.base import ExplainContext  # noqa: E402
    from auditor.device import OnDevice  # noqa: E402

    wrapped = OnDevice(model, GPU, None).eval()
    ig = cls(wrapped, cls.Params.model_validate({"n_steps": STEPS}), ExplainContext(modality="image", input_shape=(3, 224, 224)))
    n = min(BATCH, N_CUDA)
    t_cpu = torch.zeros(n, dtype=torch.long)
    ig.explain(images[:n], t_cpu)
    sync()
    ig_times = []
    for _ in range(3 if GPU.type == "cuda" else 1):
        t = time.perf_counter()
        ig.explain(images[:n], t_cpu)
        sync()
        ig_times.append(time.perf_counter() - t)
    explain_rate = n * STEPS / statistics.median(ig_times)

summary["resnet18"] = {
    "cpu_vs_cuda_images": N_CPU, "attributions": r_rows,
    "cpu_seconds": r_cpu["seconds"], "cuda_small_seconds": r_cuda["seconds"],
    "cuda_images": N_CUDA, "cuda_seconds": r_full["seconds"], "cuda_stages": r_full["provenance"]["stage_seconds"],
    "explainer_seconds": {k: e["seconds"] for k, e in r_full["explainers"].items()},
    "nondeterministic_ops": r_full["provenance"]["nondeterministic_ops"],
    "ig_pass_rows": pass_rows, "plain_fwd_bwd_rows_per_s": plain_rate,
    "ig_audit_points_per_s": audit_rate, "ig_explain_points_per_s": explain_rate,
    "ig_audit_fraction": audit_rate / plain_rate, "ig_explain_fraction": explain_rate / plain_rate,
}
s = summary["resnet18"]
lines += ["## resnet18 (random weights), 224x224 generated images", ""]
lines += [f"cuda against cpu on {N_CPU} images (run seconds cpu {r_cpu['seconds']:.1f}, cuda {r_cuda['seconds']:.1f}):", ""]
lines += table(r_rows) + [""]
lines += [f"Nondeterministic ops (cuda): {s['nondeterministic_ops']}", ""]
lines += [f"{N_CUDA} images on cuda: run {r_full['seconds']:.1f} s; explainers {s['explainer_seconds']}", ""]
verdict = "met" if s["ig_audit_fraction"] >= 0.7 else "NOT met"
lines += ["| target | measured | verdict |", "|---|---|---|"]
lines += [f"| IG throughput >= 70% of plain fwd+bwd at IG's pass size ({pass_rows} rows) | "
          f"audit {audit_rate:.4g} points/s = {s['ig_audit_fraction']:.0%} (explain alone "
          f"{explain_rate:.4g} = {s['ig_explain_fraction']:.0%}) of {plain_rate:.4g} rows/s | {verdict} |", ""]
(OUT / "device_gpu.md").write_text("\n".join(lines) + "\n")
(OUT / "device_gpu.json").write_text(json.dumps(summary, indent=1, default=str))
print("\n".join(lines[-12:]))
PYTHON
echo "bench exit: $?"
