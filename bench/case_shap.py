"""shap's GradientExplainer with default arguments against auditor's shap_gradient and
gradient_shap on the digits CNN: time ratio and per-sample Spearman.

``shap.GradientExplainer(model, background).shap_values(x)`` with defaults explains every
one of the 10 outputs with 200 draws per sample; the comparison keeps each sample's
target (predicted) class. The background is the runner's: 64 samples of the slice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shap
import torch
from common import Section, alternate, log, per_sample_spearman, pixel_maps, spread_text, table
from digits import Digits, load_digits

from auditor import registries
from auditor.explainers.shap_support import background_sample


def shap_default(d: Digits, x: torch.Tensor, rseed: int | None = None) -> np.ndarray:
    """Default shap_values of every output -> the target class's values, ``(N, 1, 8, 8)``."""
    explainer = shap.GradientExplainer(d.model, background_sample(d.context, 64, "bench"))
    values = np.asarray(explainer.shap_values(x.clone(), rseed=rseed))  # (N, 1, 8, 8, 10)
    picked = np.take_along_axis(values, d.targets[: len(x)].numpy()[:, None, None, None, None], -1)
    return picked[..., 0]


def auditor_explain(d: Digits, name: str, x: torch.Tensor) -> np.ndarray:
    cls = registries.explainers.get(name)
    return cls(d.model, cls.Params(), d.context).explain(x, d.targets[: len(x)]).numpy()


def run(runs: int, samples: int = 64) -> Section:
    d = load_digits(max(samples, 64))
    x = d.inputs[:samples]
    outputs: dict[str, Any] = {}

    def keep(name: str, func: Any) -> Any:
        def call() -> None:
            outputs[name] = func()

        return call

    timed = alternate(
        {
            "shap default": keep("shap default", lambda: shap_default(d, x)),
            "shap_gradient": keep("shap_gradient", lambda: auditor_explain(d, "shap_gradient", x)),
            "gradient_shap": keep("gradient_shap", lambda: auditor_explain(d, "gradient_shap", x)),
        },
        runs,
    )
    # shap with defaults is unseeded: a second run with another seed shows its own noise.
    reference = shap_default(d, x, rseed=0)
    other_seed = shap_default(d, x, rseed=1)
    base = timed["shap default"]
    rows: list[list[Any]] = []
    raw: dict[str, Any] = {"seconds": {k: t.seconds for k, t in timed.items()}}
    verdicts = []
    for name in ("shap_gradient", "gradient_shap"):
        rho = per_sample_spearman(outputs[name], reference)
        rho_map = per_sample_spearman(pixel_maps(outputs[name]), pixel_maps(reference))
        speedup = base.median / timed[name].median
        rows.append(
            [name, f"{timed[name].median:.3f}", f"{speedup:.1f}x",
             f"{base.minimum / timed[name].minimum:.1f}x", spread_text(rho), spread_text(rho_map)]
        )  # fmt: skip
        raw[name] = {"speedup": speedup, "spearman": rho.tolist(), "spearman_map": rho_map.tolist()}
        verdicts.append(
            (
                f"{name}: >= 10x faster than shap default, per-sample Spearman >= 0.9",
                f"{speedup:.1f}x, Spearman median {np.nanmedian(rho):.3f} min {np.nanmin(rho):.3f}",
                bool(speedup >= 10 and np.nanmin(rho) >= 0.9),
            )
        )
        log(f"case shap: {name} {speedup:.1f}x, Spearman {spread_text(rho)}")
    noise = per_sample_spearman(other_seed, reference)
    rows.append(
        ["shap default, rseed 1 vs rseed 0", f"{base.median:.3f}", "1x", "1x", spread_text(noise),
         spread_text(per_sample_spearman(pixel_maps(other_seed), pixel_maps(reference)))]
    )  # fmt: skip
    raw["shap_noise_spearman"] = noise.tolist()
    text = f"""{samples} digits, targets = predicted class, background = the runner's 64 slice
samples. `shap default` is `shap.GradientExplainer(model, background).shap_values(x)`
(nsamples=200, batch_size=50, all 10 outputs; the target's column is compared);
auditor's `shap_gradient` (shap engine on the target output only, nsamples=200) and
`gradient_shap` (Captum engine, n_samples=50) run with default params. Medians of {runs}
alternating runs; Spearman against shap default with `rseed=0`, per sample: over the
signed attributions, and over |attribution| maps. The last row is shap against itself
with another seed: the agreement the sampling noise allows.

shap default median: {base.median:.3f} s ({base.spread}).

{table(["explainer", "median s", "speedup vs shap default", "speedup (fastest runs)",
        "Spearman (signed)", "Spearman (|maps|)"], rows)}
"""  # fmt: skip
    return Section("shap.GradientExplainer defaults vs shap_gradient and gradient_shap", text,
                   raw, verdicts)  # fmt: skip
