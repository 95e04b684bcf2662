"""Integrated Gradients with ``n_steps: auto``: nested midpoint rules, refined per sample
until the attributions add up to f(x) - f(baseline) within the tolerance.

Truth on a separable model whose exact IG is known, equality with the fixed midpoint rule
when the tolerance forces the same nodes, the trained digits CNN and the text model at its
embedding layer, spec errors, and a CLI run whose results.json and report keep the steps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "text"))

from tiny import ROOT, digits_batch, digits_cnn, make_explainer

from auditor.cli import cli
from auditor.errors import SpecError
from auditor.explainers.integrated_gradients import IntegratedGradients, integrated_gradients
from auditor.explainers.quadrature import (
    adaptive_integrated_gradients,
    ladder,
    midpoint_nodes,
    tripling_nodes,
)
from auditor.metrics.base import ExplainerRun
from auditor.metrics.completeness_error import auto_note
from auditor.report.sections.summary import steps_note
from auditor.results import ExplainerResult
from auditor.spec import load_spec
from auditor.stats import summarize

TOL = 0.01


class SineSum(nn.Module):
    """``f_c(x) = sum_i W[c, i] sin(x_i)``: from a zero baseline IG is exactly
    ``W[t, i] sin(x_i)`` (a separable function), and larger inputs oscillate more along the
    path, so they need more steps."""

    def __init__(self, features: int = 6, classes: int = 3) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.weight = nn.Parameter(torch.randn(classes, features, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x.flatten(1)) @ self.weight.T


def sine_batch() -> tuple[SineSum, torch.Tensor, torch.Tensor]:
    scales = torch.linspace(0.2, 4.0, 16)
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(1)) * scales[:, None]
    return SineSum().eval(), x, torch.arange(16) % 3


def test_the_rules_are_nested() -> None:
    """Tripling keeps every node: the 3n-node rule is the n-node one plus 2n new nodes."""
    for n in (1, 3, 9, 10):
        merged = sorted(midpoint_nodes(n) + tripling_nodes(n))
        np.testing.assert_allclose(merged, midpoint_nodes(3 * n), rtol=0, atol=1e-15)
    assert ladder(27, 243) == [27, 81, 243]
    assert ladder(10, 100) == [10, 30, 90]
    assert ladder(9, 9) == [9]


def test_auto_is_complete_and_right_on_a_separable_model() -> None:
    model, x, t = sine_batch()
    exact = model.weight.detach()[t] * torch.sin(x)
    explainer = make_explainer(
        "integrated_gradients",
        model,
        {"n_steps": "auto", "min_steps": 3},
        modality="tabular",
        input_shape=(6,),
    )
    attributions = explainer.explain(x, t)
    completeness = (attributions.sum(1) - exact.sum(1)).abs() / exact.sum(1).abs()
    assert float(completeness.max()) <= TOL
    # Completeness is a sum; here each feature is right too (the exact value is known).
    error = (attributions - exact).abs().sum(1) / exact.abs().sum(1)
    assert float(error.max()) < 2 * TOL
    steps = np.asarray(explainer.sample_stats["steps"])
    assert set(steps) <= {3, 9, 27, 81, 243} and {3, 27} <= set(steps)
    assert steps[:8].mean() < steps[8:].mean()  # small inputs stop early, large ones refine
    assert explainer.sample_stats["above_tolerance"] == [0.0] * 16


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The trained digits CNN, 64 test digits, their predicted classes, f(x) - f(0)."""
    model, x = digits_cnn(), digits_batch(64)[0]
    with torch.no_grad():
        logits = model(x)
        t = logits.argmax(1)
        delta = (logits - model(torch.zeros_like(x))).gather(1, t[:, None])[:, 0].double()
    return model, x, t, delta


def test_a_huge_tolerance_is_the_first_rule_fixed(digits) -> None:
    model, x, t, _ = digits
    x, t = x[:16], t[:16]
    auto = make_explainer(
        "integrated_gradients", model, {"n_steps": "auto", "tolerance": 1e6, "min_steps": 9}
    )
    fixed = make_explainer(
        "integrated_gradients", model, {"n_steps": 9, "method": "riemann_middle"}
    )
    torch.testing.assert_close(auto.explain(x, t), fixed.explain(x, t), rtol=1e-5, atol=1e-6)
    assert auto.sample_stats["steps"] == [9.0] * 16
    assert auto.sample_stats["above_tolerance"] == [0.0] * 16
    np.testing.assert_allclose(
        auto.sample_stats["convergence_delta"], fixed.sample_stats["convergence_delta"], atol=1e-5
    )


def test_an_unreachable_tolerance_ends_at_max_steps_flagged(digits) -> None:
    """Every rule of the ladder is computed (3, 9, 27 nodes) and the sum equals the 27-node
    rule computed in one go: earlier gradients are reused, not lost."""
    model, x, t, _ = digits
    x, t = x[:8], t[:8]
    zeros = torch.zeros_like(x)
    result = adaptive_integrated_gradients(model, x, zeros, t, 1e-12, 3, 80)
    fixed = integrated_gradients(model, x, zeros, t, 27, "riemann_middle")
    torch.testing.assert_close(result.attributions, fixed, rtol=1e-5, atol=1e-6)
    assert result.steps.tolist() == [27] * 8
    assert bool(result.above(1e-12).all())


def test_digits_cnn_every_sample_within_tolerance(digits) -> None:
    """Defaults (27 to 243 steps): each sample complete within 1% of |f(x) - f(0)|, or
    flagged at the last rule. (On these 64 digits every sample stops at 27; fixed
    Gauss-Legendre reaches the same worst error, 0.93%, at 23 steps, though not at 24 or
    28: its worst sample moves erratically with n_steps.)"""
    model, x, t, delta = digits
    auto = make_explainer("integrated_gradients", model, {"n_steps": "auto"})
    attributions = auto.explain(x, t)
    error = (attributions.flatten(1).double().sum(1) - delta).abs() / delta.abs()
    steps = torch.tensor(auto.sample_stats["steps"])
    above = torch.tensor(auto.sample_stats["above_tolerance"]).bool()
    assert bool(((error <= TOL) | ((steps == 243) & above)).all())
    assert not bool((above & (error <= TOL)).any())


def test_digits_refinement_takes_fewer_gradients_than_any_cheaper_fixed_rule(digits) -> None:
    """From 9 steps only the samples above 1% go on to 27 (measured: 1,242 gradients, not
    64 x 27 = 1,728), and no fixed Gauss-Legendre n_steps that costs fewer gradients reaches
    auto's worst-sample error (the first that does is 23 steps: 1,472 gradients)."""
    model, x, t, delta = digits
    zeros = torch.zeros_like(x)
    result = adaptive_integrated_gradients(model, x, zeros, t, TOL, 9, 243)
    assert set(result.steps.tolist()) == {9, 27}
    assert float(result.error.max()) <= TOL
    evaluations = int(result.steps.sum())
    assert 9 * 64 < evaluations < 27 * 64
    for n in range(8, evaluations // 64 + 1):
        fixed = integrated_gradients(model, x, zeros, t, n).flatten(1).double().sum(1)
        assert float(((fixed - delta).abs() / delta.abs()).max()) > float(result.error.max()), n


def test_text_at_the_embedding_layer() -> None:
    from tiny_text import TokenMLP, corpus, feed, text_context, text_explainer

    ids, _, _ = corpus(24, seed=7)
    torch.manual_seed(0)  # an untrained model: the path through the embedding is the point
    model = feed(TokenMLP().eval())
    with torch.no_grad():
        logits = model(ids)
    t = logits.argmax(1)
    explainer = text_explainer("integrated_gradients", model, {"n_steps": "auto", "min_steps": 3})
    attributions = explainer.explain(ids, t)
    assert attributions.shape == ids.shape
    rows = torch.arange(len(ids))
    reference = text_context().embedding.reference_outputs(model, ids)[rows, t].double()
    delta = logits[rows, t].double() - reference
    error = (attributions.double().sum(1) - delta).abs() / delta.abs().clamp_min(1e-6)
    above = torch.tensor(explainer.sample_stats["above_tolerance"]).bool()
    assert bool((error[~above] <= TOL + 1e-6).all())
    assert len(explainer.sample_stats["steps"]) == 24


SPEC = """\
version: 1
name: t
model:
  source: python
  class: tiny:Net
data:
  source: sklearn
  name: digits
explainers:
  - type: integrated_gradients
    params: {params}
"""


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ("{n_steps: fast}", "params.n_steps: expected an integer or 'auto' (got 'fast')"),
        (
            "{n_steps: auto, tolerance: 0}",
            "params.tolerance: Input should be greater than 0 (got 0)",
        ),
        (
            "{n_steps: auto, max_steps: 9}",
            "params: max_steps (9) is below min_steps (27), the steps of the first rule",
        ),
        (
            "{n_steps: 8, tolerance: 0.1}",
            "params.tolerance: applies to n_steps: auto only (n_steps is 8)",
        ),
        (
            "{n_steps: auto, method: gausslegendre}",
            "params.method: applies to a fixed n_steps only; n_steps auto uses midpoint rules",
        ),
    ],
)
def test_bad_auto_options_are_spec_errors(tmp_path: Path, params: str, error: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.replace("{params}", params), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert [str(i).split(" ", 1)[1] for i in info.value.issues] == [f"explainers[0].{error}"]
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and f"explainers[0].{error}" in result.stderr


def test_the_summary_and_the_metric_say_when_samples_stop_above() -> None:
    stats = {"steps": [27.0] * 8 + [243.0, 243.0], "above_tolerance": [0.0] * 9 + [1.0]}
    result = ExplainerResult(
        id="ig",
        type="integrated_gradients",
        scope="local",
        status="ok",
        stats={k: summarize(v) for k, v in stats.items()},
    )
    assert steps_note(result) == (
        "n_steps auto: 702 gradient evaluations, 70.2 steps per sample (max 243). 1 sample "
        "stopped at 243 steps above the tolerance: raise max_steps."
    )
    run = ExplainerRun(
        id="ig",
        type="integrated_gradients",
        cls=IntegratedGradients,
        params=IntegratedGradients.Params(n_steps="auto"),
        attributions=np.empty((0,), np.float32),
        stats=stats,
    )
    note = auto_note(run, np.array([0.002, 0.03]))
    assert note.startswith(
        "Integrated Gradients with n_steps auto reached 0.01 of |f(x) - f(reference)| on 9 "
        "of 10 samples (1 stopped at 243 steps above it) with 702 gradient evaluations"
    )
    assert note.endswith("Here, relative to |f(x)|: mean 0.016, max 0.03.")


RUN_SPEC = """\
version: 1
name: adaptive
seed: 0
model:
  source: python
  class: examples.models:DigitsCNN
  pythonpath: [{root}]
  init: {{num_classes: 10}}
  weights: {root}/models/digits_cnn.safetensors
data:
  source: sklearn
  name: digits
  split: test
  slice: {{start: 0, stop: 48}}
  batch_size: 16
explainers:
  - type: integrated_gradients
    params: {{n_steps: auto, min_steps: 9}}
metrics:
  - type: completeness_error
report:
  formats: [html]
  gallery: {{samples: 2}}
output: {out}
"""


def test_a_cli_run_keeps_the_steps(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(RUN_SPEC.format(root=ROOT, out=tmp_path / "runs"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(spec)])
    assert result.exit_code == 0, result.stderr
    (folder,) = [p.parent for p in (tmp_path / "runs").rglob("results.json")]
    ig = json.loads((folder / "results.json").read_text())["explainers"]["integrated_gradients"]
    steps = ig["stats"]["steps"]
    assert steps["n"] == 48 and steps["min"] == 9 and steps["max"] in (9, 27, 81, 243)
    assert ig["stats"]["above_tolerance"]["mean"] == 0
    total = round(steps["mean"] * 48)
    per_sample = json.loads((folder / "attributions/integrated_gradients.stats.json").read_text())
    assert sum(per_sample["steps"]) == total
    metric = ig["metrics"]["completeness_error"]
    assert metric["values"]["gradient_evaluations"] == total
    assert (
        f"reached 0.01 of |f(x) - f(reference)| on every sample with {total:,} gradient"
        in (metric["note"])
    )
    html = (folder / "report.html").read_text()
    assert f"n_steps auto: {total:,} gradient evaluations" in html
