"""Case 3: resnet18 (random weights) at 224x224: float32 against bfloat16, +- channels_last.

auditor's explainers (``Explainer.explain``) on a random-weight resnet18: integrated
gradients (32 steps), Grad-CAM at ``layer4`` and occlusion. Precision variants:

- float32: the model as the runner loads it;
- bfloat16: the runner's ``precision: bfloat16`` wrapper (``auditor.runner.with_precision``,
  CPU autocast, float32 outputs);
- ``+ channels_last``: model and inputs converted here (the runner does not do it yet).

Per-sample Spearman compares each variant's attributions with float32's: over the signed
attributions and over |attribution| maps (channels averaged). Achieved GFLOPS count one
forward + input-gradient backward per path point (``torch.utils.flop_counter``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
import torchvision
from common import (
    Section,
    alternate,
    log,
    machine,
    per_sample_spearman,
    pixel_maps,
    spread_text,
    table,
)
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from auditor import registries
from auditor.explainers.base import ExplainContext
from auditor.models.base import ModelSource
from auditor.runner import with_precision

#: "bfloat16" is the runner's ``precision: bfloat16``: CPU autocast, and channels_last for a
#: convolutional model such as this one.
VARIANTS = ("float32", "float32 + channels_last", "bfloat16")


def build(variant: str, size: int = 224) -> nn.Module:
    torch.manual_seed(0)  # the same random weights for every variant
    model = ModelSource.finish(torchvision.models.resnet18(weights=None, num_classes=1000))
    if variant == "float32 + channels_last":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    example = torch.zeros(2, 3, size, size)  # the runner passes two samples of the slice
    return with_precision(model, "bfloat16" if variant == "bfloat16" else "float32", example)


def layout(x: torch.Tensor, variant: str) -> torch.Tensor:
    if variant == "float32 + channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    return x  # the bfloat16 wrapper changes the layout itself


def method_params(size: int, steps: int) -> dict[str, tuple[str, dict[str, Any]]]:
    window = max(1, size // 7)  # 7 x 7 windows: 49 occluded copies per image
    return {
        "integrated_gradients": (
            "integrated_gradients",
            {"n_steps": steps, "internal_batch_size": 32},
        ),
        "gradcam": ("gradcam", {"layer": "layer4"}),
        "occlusion": ("occlusion", {"window": [window, window], "stride": [window, window]}),
    }


def explainer(name: str, params: dict[str, Any], model: nn.Module, size: int) -> Any:
    cls = registries.explainers.get(name)
    context = ExplainContext(modality="image", input_shape=(3, size, size), seed=0)
    return cls(model, cls.Params.model_validate(params), context)


def _explain(
    method: Any, x: torch.Tensor, t: torch.Tensor, outputs: dict[str, torch.Tensor], key: str
) -> None:
    outputs[key] = method.explain(x, t)


def gflop_per_pass(size: int) -> float:
    """GFLOP of one forward + input-gradient backward of one image."""
    model = build("float32")
    x = torch.zeros(1, 3, size, size, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        model(x)[:, 0].sum().backward()
    return counter.get_total_flops() / 1e9


def hardware_note() -> str:
    flags = machine()["flags"]
    if flags["amx_bf16"] or flags["avx512_bf16"]:
        return "This CPU has bfloat16 instructions (AMX or AVX512-BF16)."
    return (
        "This CPU has neither AMX nor AVX512-BF16 (flags in the header): bfloat16 matrix "
        "products are emulated, so CPU autocast is slower than float32 here; the issue's 330 "
        "GFLOPS figure needs AMX."
    )


def run(
    runs: int,
    size: int = 224,
    steps: int = 32,
    images: dict[str, int] | None = None,
) -> Section:
    images = images or {"integrated_gradients": 2, "gradcam": 8, "occlusion": 1}
    torch.manual_seed(1)
    pool = torch.randn(max(images.values()), 3, size, size)
    models = {v: build(v, size) for v in VARIANTS}
    with torch.no_grad():
        targets = models["float32"](pool).argmax(dim=1)
    rows, raw, verdicts = [], {}, []
    for method, (name, params) in method_params(size, steps).items():
        n = images[method]
        x, t = pool[:n], targets[:n]
        outputs: dict[str, torch.Tensor] = {}
        calls = {
            v: partial(
                _explain, explainer(name, params, models[v], size), layout(x, v), t, outputs, v
            )
            for v in VARIANTS
        }
        log(f"case 3: {method} on {n} image(s), {len(VARIANTS)} variants x {runs}")
        timed = alternate(calls, runs, warmup=0)
        base = timed["float32"]
        raw[method] = {"images": n, "seconds": {v: timed[v].seconds for v in VARIANTS}}
        for v in VARIANTS:
            rho = per_sample_spearman(outputs[v].numpy(), outputs["float32"].numpy())
            rho_map = per_sample_spearman(
                pixel_maps(outputs[v].numpy()), pixel_maps(outputs["float32"].numpy())
            )
            speedup = base.median / timed[v].median
            rows.append(
                [method, v, n, f"{timed[v].median:.2f}", f"{timed[v].median / n * 64:.0f}",
                 f"{speedup:.2f}x", spread_text(rho), spread_text(rho_map)]
            )  # fmt: skip
            raw[method][v] = {"speedup": speedup, "spearman": rho.tolist(),
                              "spearman_map": rho_map.tolist()}  # fmt: skip
            if method == "integrated_gradients" and v.startswith("bfloat16"):
                verdicts.append(
                    (
                        f"bf16 IG ({v}) >= 2.5x faster than float32, Spearman >= 0.98",
                        f"{speedup:.2f}x, Spearman signed {spread_text(rho)}, |maps| "
                        f"{spread_text(rho_map)}",
                        bool(speedup >= 2.5 and np.nanmin(rho) >= 0.98),
                    )
                )
    flop = gflop_per_pass(size)
    ig = raw["integrated_gradients"]
    passes = images["integrated_gradients"] * steps
    rates = {v: flop * passes / float(np.median(ig["seconds"][v])) for v in VARIANTS}
    raw["gflop_per_pass"] = flop
    raw["ig_gflops"] = rates
    text = f"""Random-weight resnet18, {size}x{size} inputs (seeded normal noise), targets =
float32 predictions. Integrated gradients: {steps} steps, zero baseline, internal batch
32 path points; Grad-CAM at `layer4`; occlusion: {size // 7}x{size // 7} windows, stride
{size // 7} (49 copies per image; auditor's default window of an eighth would need 225).
To keep the whole benchmark within minutes, each method runs on fewer than 64 images (the
column "images"); "s / 64 images" projects the median linearly to the issue's 64.
{runs} alternating runs of the {len(VARIANTS)} variants, no warm-up round (the median absorbs the
first run).

{table(["method", "variant", "images", "median s", "s / 64 images", "speedup vs float32",
        "Spearman vs float32 (signed)", "Spearman (|maps|)"], rows)}

Achieved rate of integrated gradients: {flop:.2f} GFLOP per forward + input-gradient
backward at {size}x{size}; {", ".join(f"{v} {r:.1f} GFLOPS" for v, r in rates.items())}.

The bfloat16 variant is the runner's `precision: bfloat16` (`auditor.runner.with_precision`):
CPU autocast, with the model and its inputs in channels_last layout.

{hardware_note()}
"""  # fmt: skip
    return Section("Case 3: resnet18, float32 vs bfloat16", text, raw, verdicts)
