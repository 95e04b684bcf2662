"""kernel_shap on a wide table (issue 14): 150 samples x 500 gene-expression-like features.

The table is generated: 50 pathways of 10 genes, each gene a pathway factor plus its own
noise on a log scale, standardized; the label is planted in the first 5 genes. A small MLP
(500 -> 64 -> 32 -> 2) is trained on 3,000 such rows (seeded, a few seconds). The slice is
150 fresh rows, the background the runner's: the slice itself, summarized by k-means to
``n_background`` = 20 centres (kernel_shap's default).

Compared, alternately (A B A B): ``shap engine``, the previous implementation
(``shap.KernelExplainer`` per sample, shap's default budget 2 M + 2048 = 3048 coalitions)
and ``kernel_shap`` with default params (the batched engine, budget ``max(2176, 4 M)`` = 2176).
Reported: median seconds, the additivity gap (``convergence_delta``, sum of attributions
minus ``f(x) - E[f(background)]``), and the per-sample Spearman of each against a
high-budget estimate on the first ``reference_samples`` samples.

Run alone: ``python bench/case_wide.py [runs [torch threads [runs of the shap engine]]]``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import shap
import torch
from common import (
    ROOT,
    Section,
    alternate,
    log,
    per_sample_spearman,
    spread_text,
    table,
    verdict,
)

from auditor import registries
from auditor.explainers.base import ExplainContext
from auditor.explainers.kernel_shap_engine import default_nsamples
from auditor.explainers.shap_support import completeness_gap, numpy_seed

sys.path.insert(0, str(ROOT))  # examples/ is not an installed package

PLANTED = 5


@dataclass
class Wide:
    model: torch.nn.Module
    inputs: torch.Tensor  # (N, M) the slice
    targets: torch.Tensor  # (N,) predicted classes
    context: ExplainContext


def expression(rows: int, genes: int, generator: torch.Generator) -> torch.Tensor:
    """Log-expression-like rows: pathway factors (10 genes each) plus gene noise."""
    pathways = torch.randn(rows, genes // 10, generator=generator)
    level = pathways.repeat_interleave(10, dim=1) + 0.8 * torch.randn(
        rows, genes, generator=generator
    )
    counts = torch.exp(1.0 + 0.7 * level)  # log-normal "counts"
    logged = torch.log1p(counts)
    return (logged - logged.mean(0)) / logged.std(0)


def planted_label(x: torch.Tensor) -> torch.Tensor:
    score = x[:, 0] + x[:, 1] - x[:, 2] + x[:, 3] - x[:, 4]
    return (score > 0).long()


def load_wide(samples: int = 150, features: int = 500, seed: int = 0) -> Wide:
    """The trained MLP, a slice of ``samples`` rows and its context (background = slice)."""
    from examples.models import TabularMLP

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    train = expression(3000 + samples, features, generator)
    x_train, x_slice = train[:3000], train[3000:]
    y_train = planted_label(x_train)
    model = TabularMLP(features, (64, 32), 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    for _ in range(150):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x_train), y_train)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        targets = model(x_slice).argmax(1)
    context = ExplainContext(
        modality="tabular", input_shape=(features,), seed=seed, background=x_slice.clone()
    )
    return Wide(model, x_slice, targets, context)


def kernel_shap(w: Wide, x: torch.Tensor, **params: Any) -> tuple[np.ndarray, np.ndarray]:
    """auditor's kernel_shap: attributions and the per-sample additivity gaps."""
    cls = registries.explainers.get("kernel_shap")
    explainer = cls(w.model, cls.Params.model_validate(params), w.context)
    attributions = explainer.explain(x, w.targets[: len(x)]).numpy()
    return attributions, np.asarray(explainer.sample_stats["convergence_delta"])


def shap_engine(w: Wide, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The previous kernel_shap: shap.KernelExplainer per sample, shap's default budget."""
    cls = registries.explainers.get("kernel_shap")
    summary = cls(w.model, cls.Params(), w.context).background_summary(tuple(x.shape[1:]))
    out = np.zeros(tuple(x.shape))
    expected = torch.zeros(len(x))
    targets = w.targets[: len(x)]
    rows = x.numpy().astype(np.float64)
    for target in torch.unique(targets).tolist():

        def f(batch: np.ndarray, target: int = target) -> np.ndarray:
            with torch.no_grad():
                t = torch.as_tensor(batch, dtype=torch.float32)
                return w.model(t)[:, target].numpy().astype(np.float64)

        explainer = shap.KernelExplainer(f, summary)
        for i in torch.nonzero(targets == target).flatten().tolist():
            with numpy_seed(w.context.seed):
                values = explainer.shap_values(rows[i : i + 1], silent=True, l1_reg=False)
            out[i] = np.asarray(values).reshape(-1)
            expected[i] = float(np.asarray(explainer.expected_value).reshape(-1)[0])
    attributions = torch.as_tensor(out, dtype=torch.float32)
    gaps = completeness_gap(w.model, x, targets, attributions, expected)
    return out, gaps.numpy()


def run(
    runs: int,
    samples: int = 150,
    features: int = 500,
    reference_samples: int = 10,
    reference_nsamples: int = 40_000,
    old_runs: int | None = None,
) -> Section:
    w = load_wide(samples, features)
    x = w.inputs
    outputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def keep(name: str, func: Any) -> Any:
        def call() -> None:
            outputs[name] = func()

        return call

    # The old engine takes minutes: it alternates with the new one for ``old_runs`` rounds
    # (default: all), the remaining rounds time the new engine alone.
    old_runs = runs if old_runs is None else min(old_runs, runs)
    timed = alternate(
        {
            "shap engine": keep("shap engine", lambda: shap_engine(w, x)),
            "kernel_shap": keep("kernel_shap", lambda: kernel_shap(w, x)),
        },
        old_runs,
        warmup=0,
    )
    if runs > old_runs:
        extra = alternate({"kernel_shap": lambda: kernel_shap(w, x)}, runs - old_runs, warmup=0)
        timed["kernel_shap"].seconds += extra["kernel_shap"].seconds
    log("case wide: reference estimate")
    start = time.perf_counter()
    reference, _ = kernel_shap(w, x[:reference_samples], nsamples=reference_nsamples)
    reference_seconds = time.perf_counter() - start
    rows: list[list[Any]] = []
    raw: dict[str, Any] = {"seconds": {k: t.seconds for k, t in timed.items()}}
    for name in ("shap engine", "kernel_shap"):
        values, gaps = outputs[name]
        rho = per_sample_spearman(values[:reference_samples], reference)
        budget = 2 * features + 2048 if name == "shap engine" else default_nsamples(features)
        rows.append(
            [name, budget, f"{timed[name].median:.2f}", timed[name].spread,
             f"{np.abs(gaps).max():.2e}", spread_text(rho)]
        )  # fmt: skip
        raw[name] = {"gaps": gaps.tolist(), "spearman": rho.tolist(), "nsamples": budget}
    values_old, values_new = outputs["shap engine"][0], outputs["kernel_shap"][0]
    agreement = per_sample_spearman(values_new, values_old)
    new = timed["kernel_shap"]
    gap = float(np.abs(outputs["kernel_shap"][1]).max())
    target_ok = bool(new.median <= 15 and gap < 1e-4)
    old = timed["shap engine"]
    log(f"case wide: kernel_shap {new.median:.2f} s, shap engine {old.median:.1f} s")
    alone = f", then {runs - old_runs} more of kernel_shap alone" if runs > old_runs else ""
    text = f"""{samples} x {features} generated expression table (50 pathways of 10 genes, label
planted in genes 0-4), MLP {features} -> 64 -> 32 -> 2; targets = predicted class; background =
the slice, k-means to 20 centres (kernel_shap's default). `shap engine` is the previous
implementation (`shap.KernelExplainer` per sample, shap's default 2 M + 2048 coalitions);
`kernel_shap` the batched engine with default params. {old_runs} alternating runs of both
(A B A B, no warm-up; shap's run takes minutes){alone}. torch threads: {torch.get_num_threads()}.
Additivity gap: max over samples of |sum(attributions) - (f(x) - E[f(background)])|.
Spearman per sample against a {reference_nsamples:,}-coalition estimate on the first
{reference_samples} samples ({reference_seconds:.0f} s). Other jobs shared the 2 cores.

{table(["engine", "coalitions", "median s", "min..max s", "max additivity gap",
        "Spearman vs reference"], rows)}

kernel_shap against the shap engine, per sample, all {samples}: Spearman {spread_text(agreement)}.
Speed-up (medians): {timed["shap engine"].median / new.median:.1f}x.
"""  # fmt: skip
    raw["agreement_with_shap_engine"] = agreement.tolist()
    return Section(
        "kernel_shap on a wide table (150 x 500)",
        text,
        raw,
        [
            (
                "kernel_shap, 150 x 500, default params: <= 15 s, additivity gap ~0",
                f"{new.median:.2f} s, gap {gap:.1e}",
                target_ok,
            )
        ],
    )


if __name__ == "__main__":
    # python bench/case_wide.py [RUNS [THREADS [OLD_RUNS]]]
    if len(sys.argv) > 2:
        torch.set_num_threads(int(sys.argv[2]))
    old = int(sys.argv[3]) if len(sys.argv) > 3 else None
    section = run(int(sys.argv[1]) if len(sys.argv) > 1 else 3, old_runs=old)
    print(section.markdown())
    for name, value, ok in section.targets:
        print(f"- {name}: {value} ({verdict(ok)})")
