"""Case "ray": a resnet18 audit at 224 px, local against Ray with 1 and 2 workers (issue 16).

The audit: torchvision resnet18 with random weights (seed 0, no download), an image folder
of generated 224x224 PNGs (``--images``, default 16; two classes), batch 4, integrated
gradients (32 steps, internal batch 32), Grad-CAM at ``layer4`` and occlusion with 32 px
windows and stride (49 occluded copies per image), no metrics, no report. Each variant is
the CLI in a fresh process:

- local: ``runner.backend: local`` (torch's intra-op threads on every core);
- ray 1 / ray 2: ``runner: {backend: ray, address: local, workers: N, shard_size: 4}``;
  each worker reserves 1 CPU, so Ray runs it with one torch thread.

Reported: the explain stage's seconds (results.json ``provenance.stage_seconds``; for Ray
it includes starting the cluster and the actors, which the table also shows apart as the
time to the first finished shard is not recorded), the attributions' equality with the
local run, and GFLOPS: the FLOPs of the three explainers on one image
(``torch.utils.flop_counter``: IG 32 forward + backward passes, Grad-CAM one, occlusion 50
forwards) times the images, over the explain seconds, against the fwd+bwd floor (a plain
loop of resnet18 forward + input-gradient backward at batch 4 on all cores).

Usage: python bench/case_ray.py [--images 16] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from common import AUDITOR, Section, log, machine, table
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

SIZE = 224
STEPS = 32
WINDOW = 32
BATCH = 4


def make_images(root: Path, n: int) -> None:
    """``n`` smooth random RGB images in two class folders (seeded)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class_{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        low = rng.random((8, 8, 3))
        image = Image.fromarray((low * 255).astype(np.uint8)).resize((SIZE, SIZE))
        image.save(folder / f"img_{i:04d}.png")


def write_spec(folder: Path, images: Path) -> Path:
    spec = folder / "resnet_ray.yaml"
    spec.write_text(
        f"""version: 1
name: resnet-ray
seed: 0
model:
  source: torchvision
  arch: resnet18
data:
  source: image_folder
  root: {images}
  normalize: {{mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}}
  batch_size: {BATCH}
explainers:
  - type: integrated_gradients
    params: {{n_steps: {STEPS}, internal_batch_size: 32}}
  - type: gradcam
    params: {{layer: layer4}}
  - type: occlusion
    params: {{window: [{WINDOW}, {WINDOW}], stride: [{WINDOW}, {WINDOW}]}}
metrics: []
report: {{formats: []}}
output: {folder / "runs"}
"""
    )
    return spec


def variants(workers: tuple[int, ...]) -> dict[str, tuple[str, ...]]:
    """local, then Ray with each number of 1-CPU workers."""
    out: dict[str, tuple[str, ...]] = {"local": ()}
    for n in workers:
        name = f"ray, {n} worker" + ("s" if n > 1 else "")
        out[name] = ("runner.backend=ray", "runner.address=local", f"runner.workers={n}")
    return out


def run_variant(spec: Path, run_id: str, sets: tuple[str, ...]) -> tuple[float, dict]:
    args = [str(AUDITOR), "run", str(spec), "-q", "--run-id", run_id]
    for item in (*sets, f"runner.shard_size={BATCH}"):
        args += ["--set", item]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{run_id}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    results = json.loads(
        (spec.parent / "runs" / "resnet-ray" / run_id / "results.json").read_text()
    )
    return wall, results


def startup(results: dict) -> float:
    """Seconds the explainers waited for Ray's cluster and workers to start (0 locally)."""
    return sum(
        (record.get("extra") or {}).get("ray", {}).get("startup_seconds", 0.0)
        for record in results["explainers"].values()
    )


def flops_per_image() -> float:
    """FLOPs of IG (32 fwd+bwd), Grad-CAM (1 fwd+bwd) and occlusion (50 fwd) on one image."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(1, 3, SIZE, SIZE, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    fwd_bwd = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    fwd = counter.get_total_flops()
    copies = (SIZE // WINDOW) ** 2 + 1
    return float(STEPS * fwd_bwd + fwd_bwd + copies * fwd)


def floor_gflops(seconds: float = 20.0) -> float:
    """resnet18 forward + input-gradient backward at batch 8 on every core: GFLOPS."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.rand(BATCH, 3, SIZE, SIZE)
    with FlopCounterMode(display=False) as counter:
        model(x.clone().requires_grad_(True)).sum().backward()
    flops = counter.get_total_flops()
    xi = x.clone().requires_grad_(True)
    torch.autograd.grad(model(xi).sum(), xi)  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(model(xi).sum(), xi)
        n += 1
    return flops * n / (time.perf_counter() - start) / 1e9


def run(runs: int = 1, images: int = 16, workers: tuple[int, ...] = (1, 2)) -> Section:
    """The case once per variant (each takes minutes: ``runs`` is not used). ``workers``
    must start with 1: the speed-ups and scaling efficiencies are against one worker."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_images(folder / "images", images)
        spec = write_spec(folder, folder / "images")
        found = {}
        for i, (name, sets) in enumerate(variants(workers).items()):
            log(f"case ray: {name}, {images} images")
            wall, results = run_variant(spec, f"v{i}", sets)
            found[name] = (wall, results)
            seconds = results["provenance"]["stage_seconds"]["explain"]
            log(f"  explain {seconds:.1f} s, wall {wall:.1f} s")
        runs_dir = folder / "runs" / "resnet-ray"
        equal = {
            name: all(
                (runs_dir / f"v{i}" / "attributions" / f"{e}.npy").read_bytes()
                == (runs_dir / "v0" / "attributions" / f"{e}.npy").read_bytes()
                for e in ("integrated_gradients", "gradcam", "occlusion")
            )
            for i, name in enumerate(found)
        }
    per_image = flops_per_image()
    floor = floor_gflops(5.0 if images <= 4 else 20.0)
    one = found["ray, 1 worker"][1]["provenance"]["stage_seconds"]["explain"]
    one_compute = one - startup(found["ray, 1 worker"][1])
    rows, speedups, compute_speedups = [], {}, {}
    for name, (wall, results) in found.items():
        explain = results["provenance"]["stage_seconds"]["explain"]
        compute = explain - startup(results)
        gflops = per_image * images / compute / 1e9
        speedups[name] = one / explain
        compute_speedups[name] = one_compute / compute
        rows.append(
            [
                name,
                f"{explain:.1f}",
                f"{compute:.1f}",
                f"{wall:.1f}",
                f"{one / explain:.2f}x",
                f"{one_compute / compute:.2f}x",
                f"{gflops:.1f}",
                f"{gflops / floor:.0%}",
                "yes" if equal[name] else "NO",
            ]
        )
    targets = []
    for n in workers[1:]:
        name = f"ray, {n} workers"
        efficiency = speedups[name] / n
        if n == 2:  # this machine's target: 2 workers at least 1.7x one
            met = speedups[name] >= 1.7
            targets.append(("ray: 2 workers >= 1.7x one worker", f"{speedups[name]:.2f}x", met))
            met = compute_speedups[name] >= 1.7
            value = f"{compute_speedups[name]:.2f}x"
            targets.append(("ray: 2 workers >= 1.7x one worker, start-up excluded", value, met))
        if n == 16:  # a 16-core machine's: scaling efficiency at least 0.7
            met = efficiency >= 0.7
            targets.append(("ray: efficiency at 16 workers >= 0.7", f"{efficiency:.2f}", met))
            compute = compute_speedups[name] / n
            targets.append(
                ("ray: efficiency at 16, start-up excluded", f"{compute:.2f}", compute >= 0.7)
            )
    verdicts = "\n".join(
        f"- Target {name}: {value}, **{'met' if ok else 'not met'}**."
        for name, value, ok in targets
    )
    text = (
        f"resnet18 (random weights), {images} generated images of {SIZE}x{SIZE}, batch "
        f"{BATCH}, shards of {BATCH}: integrated gradients {STEPS} steps, Grad-CAM layer4, "
        f"occlusion {WINDOW} px windows ({per_image / 1e9:.0f} GFLOP per image). Each variant "
        "is `auditor run` in a fresh process; explain = the explain stage's seconds "
        "(for Ray: starting the cluster and the actors included; `extra.ray.startup_seconds` "
        "says how long the first explainer waited for them, shown apart). The fwd+bwd floor "
        f"(batch {BATCH}, all cores, plain torch loop): {floor:.1f} GFLOPS.\n\n"
        + table(
            [
                "variant",
                "explain (s)",
                "without start-up (s)",
                "process wall (s)",
                "vs 1 worker",
                "without start-up",
                "GFLOPS (without start-up)",
                "of floor",
                "equal to local",
            ],
            rows,
        )
        + "\n\n"
        + verdicts
    )
    return Section(
        "Case ray: resnet18 audit, local vs Ray with 1 and 2 workers (issue 16)",
        text,
        raw={"speedups": speedups, "floor_gflops": floor, "rows": rows},
        targets=targets,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="Ray worker counts, 1 first: 1,4,8,16")
    parser.add_argument("--smoke", action="store_true", help="4 images: checks the case runs")
    args = parser.parse_args()
    workers = tuple(int(n) for n in args.workers.split(","))
    print(f"Machine: {machine()}\n")
    print(run(1, 4 if args.smoke else args.images, workers).markdown())


if __name__ == "__main__":
    main()
