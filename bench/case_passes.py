"""Case "passes": how many rows one pass through the model should take.

Forward + input gradient of the same rows, split into passes of different sizes, on the
digits CNN (32,768 rows of 8x8) and a random-weight resnet18 (32 images of 224x224). The
row marked "chosen" is what ``auditor.explainers.passes.rows_per_pass`` picks for that model:
integrated gradients, GradientSHAP, SmoothGrad, LIME and shap_gradient size their passes by
it when the spec leaves the batch size out.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torchvision
from common import Section, alternate, log, table
from torch import nn

from auditor.explainers.passes import activation_elements, rows_per_pass
from auditor.models.base import ModelSource


def gradient_passes(model: nn.Module, x: torch.Tensor, t: torch.Tensor, rows: int) -> None:
    for first in range(0, len(x), rows):
        part = x[first : first + rows].clone().requires_grad_(True)
        out = model(part).gather(1, t[first : first + rows, None]).sum()
        torch.autograd.grad(out, part)


def models(scale: float) -> dict[str, tuple[nn.Module, torch.Tensor, tuple[int, ...]]]:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from examples.models import DigitsCNN

    torch.manual_seed(0)
    digits = ModelSource.finish(DigitsCNN())
    resnet = ModelSource.finish(torchvision.models.resnet18(weights=None))
    n_digits, n_resnet = max(64, int(32768 * scale)), max(2, int(32 * scale))
    return {
        "digits CNN": (digits, torch.rand(n_digits, 1, 8, 8),
                       (64, 256, 1024, 4096, 16384, 32768)),
        "resnet18 224x224": (resnet, torch.randn(n_resnet, 3, 224, 224), (1, 2, 4, 8, 16, 32)),
    }  # fmt: skip


def run(runs: int, scale: float = 1.0) -> Section:
    rows_out, raw = [], {}
    for name, (model, x, sizes) in models(scale).items():
        with torch.no_grad():
            t = model(x[:256]).argmax(1).repeat(-(-len(x) // 256))[: len(x)]
        chosen = rows_per_pass(model, x)
        sizes = tuple(sorted({min(s, len(x)) for s in sizes} | {min(chosen, len(x))}))
        calls: dict[str, Callable[[], None]] = {
            str(s): partial(gradient_passes, model, x, t, s) for s in sizes
        }
        log(f"case passes: {name}, {len(x)} rows, pass sizes {sizes}")
        timed = alternate(calls, runs, warmup=1)
        best = min(timed.values(), key=lambda v: v.median)
        per_row = activation_elements(model, tuple(x.shape[1:]), x.dtype)
        raw[name] = {
            "rows": len(x),
            "activation_elements_per_row": per_row,
            "chosen": chosen,
            "seconds": {s: v.seconds for s, v in timed.items()},
        }
        for s, v in timed.items():
            rows_out.append(
                [name, s, f"{int(s) * per_row / 2**20:.0f}", f"{v.median:.3f}", v.spread,
                 f"{v.median / best.median:.2f}x",
                 "chosen" if int(s) == min(chosen, len(x)) else ""]
            )  # fmt: skip
    text = f"""Forward + input gradient of every row, split into passes of the given size
(model parameters frozen, as auditor runs them). {runs} alternating runs after a warm-up round.
"Activations a pass" counts elements in units of 2^20 (estimated as
`auditor.explainers.passes` does: twice the leaf modules' outputs).

{table(["model", "rows a pass", "activations a pass (2^20 elements)", "median s", "min..max s",
        "vs fastest", "rows_per_pass"], rows_out)}
"""  # fmt: skip
    return Section("Case passes: rows per pass through the model", text, raw)
