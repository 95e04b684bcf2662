"""Every registered explainer on a TorchScript copy of the conformance models: it either gives
the eager model's attributions or is refused in planning with the exact message.

TorchScript runs its submodules from compiled code: scripted modules refuse hooks, traced
ones never call them. Explainers that hook modules (``needs_hooks``) are refused; the others
must work, pass sizing included (it counts operations instead of hooking leaves). Image
explainers run on the trained digits CNN, tabular ones on ``tiny.Linear``, with the inputs,
params and background of ``test_conformance``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from test_conformance import batch, expected_names, global_slice, params_for
from tiny import ROOT, Linear, digits_batch, digits_cnn, make_explainer

from auditor import registries
from auditor.errors import RunError, SpecIssue
from auditor.explainers.passes import activation_elements, rows_per_pass
from auditor.planning import plan_issues
from auditor.spec.model import AuditSpec

AUDITOR = Path(sys.executable).parent / "auditor"
SHAPES = {"image": (1, 8, 8), "tabular": (6,)}

WORK_ON_TORCHSCRIPT = {
    "image": "feature_ablation, gradient_shap, input_x_gradient, integrated_gradients, lime, "
    "occlusion, permutation_importance, saliency, shap_gradient, shap_partition, smoothgrad, "
    "surrogate_forest, surrogate_linear, surrogate_tree",
    "tabular": "feature_ablation, gradient_shap, input_x_gradient, integrated_gradients, "
    "kernel_shap, lime, occlusion, permutation_importance, saliency, shap_gradient, "
    "smoothgrad, surrogate_forest, surrogate_linear, surrogate_tree",
}
#: Verified one by one: each hooks modules (CAM layers, ReLU backward hooks, torch.fx).
NEED_HOOKS = {
    "deep_shap",
    "deeplift",
    "gradcam",
    "gradcam_plus_plus",
    "guided_backprop",
    "score_cam",
    "shap_deep",
}


def eager(modality: str) -> nn.Module:
    return digits_cnn() if modality == "image" else Linear(in_features=6, classes=3).eval()


@cache
def compiled(modality: str, how: str) -> torch.jit.ScriptModule:
    model = eager(modality)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated upstream
        if how == "script":
            return torch.jit.script(model)
        return torch.jit.trace(model, batch(modality)[0])


def cases() -> list[Any]:
    return [
        pytest.param(name, modality, how, id=f"{name}-{modality}-{how}")
        for name in registries.explainers.names()
        for modality in ("image", "tabular")
        if modality in registries.explainers.get(name).modalities
        for how in ("script", "trace")
    ]


def planned(name: str, modality: str, model: nn.Module) -> list[SpecIssue]:
    cls = registries.explainers.get(name)
    params = params_for(name, cls, modality)
    spec = AuditSpec.model_validate(
        {
            "version": 1,
            "name": "ts",
            "model": {"source": "torchscript"},
            "data": {"source": "sklearn"},
            "explainers": [{"type": name, "params": params}],
        }
    )
    return plan_issues(
        spec,
        {name: cls.Params.model_validate(params)},
        {},
        modality=modality,
        input_shape=SHAPES[modality],
        feature_names=None,
        model=model,
    )


def explain(name: str, modality: str, model: nn.Module) -> Any:
    """Local attributions of the conformance batch, or a global explanation of its slice."""
    cls = registries.explainers.get(name)
    _, _, background = batch(modality)
    explainer = make_explainer(
        name,
        model,
        params_for(name, cls, modality),
        modality=modality,
        input_shape=SHAPES[modality],
        background=background,
    )
    if cls.scope == "global":
        inputs, predictions = global_slice(modality)
        if modality == "tabular":
            explainer.context.feature_names = expected_names(modality)
        return explainer.explain_global(inputs, predictions)
    inputs, targets, _ = batch(modality)
    return explainer.explain(inputs, targets)


def test_the_explainers_that_need_hooks_are_the_verified_ones() -> None:
    marked = {n for n in registries.explainers.names() if registries.explainers.get(n).needs_hooks}
    assert marked == NEED_HOOKS


@pytest.mark.parametrize(("name", "modality", "how"), cases())
def test_every_explainer_works_on_torchscript_or_is_refused_in_planning(
    name: str, modality: str, how: str
) -> None:
    model = compiled(modality, how)
    issues = planned(name, modality, model)
    if name in NEED_HOOKS:
        assert issues == [
            SpecIssue(
                f"explainer '{name}' needs hooks on the model's modules, which TorchScript "
                f"models do not support. Explainers that work on TorchScript models with "
                f"{modality} data: {WORK_ON_TORCHSCRIPT[modality]}",
                ("explainers", 0, "type"),
            )
        ]
        return
    assert issues == []
    got, expected = explain(name, modality, model), explain(name, modality, eager(modality))
    if registries.explainers.get(name).scope == "global":
        assert got.feature_names == expected.feature_names
        assert np.isfinite(got.importance).all()
        np.testing.assert_allclose(got.importance, expected.importance, rtol=1e-5, atol=1e-6)
        return
    inputs, _, _ = batch(modality)
    assert got.shape == inputs.shape and got.dtype == torch.float32
    assert torch.isfinite(got).all()
    scale = max(1.0, float(expected.abs().max()))
    assert float((got - expected).abs().max()) <= 1e-5 * scale


@pytest.mark.parametrize("how", ["script", "trace"])
def test_an_explainer_that_needs_hooks_refuses_a_torchscript_model_when_built(how: str) -> None:
    """Without planning (a library caller): an error, not guided backprop's plain gradient."""
    with pytest.raises(RunError) as raised:
        make_explainer("guided_backprop", compiled("image", how), {})
    assert str(raised.value) == (
        "explainer 'guided_backprop' needs hooks on the model's modules, which TorchScript "
        "models do not support"
    )


# -- pass sizing without hooks ---------------------------------------------------------------
class Wrapper(nn.Module):
    """An eager model around a scripted one: hooks on its leaves would be refused."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) * self.scale


@pytest.mark.parametrize("how", ["script", "trace"])
def test_pass_sizes_of_a_torchscript_model_are_counted_without_hooks(how: str) -> None:
    # conv 16x8x8, relu, conv 32x8x8, relu, pool 32x4x4 (values and indices), fc 64, relu,
    # fc 10: the leaf modules' outputs, which the hooks count on the eager model.
    leaves = 1024 + 1024 + 2048 + 2048 + 512 + 512 + 64 + 64 + 10
    scripted = compiled("image", how)
    assert activation_elements(digits_cnn(), (1, 8, 8), torch.float32) == 2 * leaves
    assert activation_elements(scripted, (1, 8, 8), torch.float32) == 2 * leaves
    x, _ = digits_batch(4)
    assert rows_per_pass(scripted, x) == rows_per_pass(digits_cnn(), x) == 1148
    # the wrapper adds one multiplication's output (10 elements)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = Wrapper(torch.jit.script(digits_cnn()))
    assert activation_elements(wrapped, (1, 8, 8), torch.float32) == 2 * (leaves + 10)


def test_gradient_methods_do_not_depend_on_the_callers_grad_mode() -> None:
    """Captum's sensitivity_max explains under torch.no_grad; GradientSHAP failed there."""
    inputs, targets, background = batch("image")
    for name in ("gradient_shap", "shap_gradient", "integrated_gradients", "saliency"):
        cls = registries.explainers.get(name)
        explainer = make_explainer(
            name, digits_cnn(), params_for(name, cls, "image"), background=background
        )
        with torch.no_grad():
            quiet = explainer.explain(inputs, targets)
        assert torch.equal(quiet, explainer.explain(inputs, targets)), name


# -- an eager model that holds a TorchScript module -----------------------------------------
def wrapped(modality: str) -> nn.Module:
    """The eager ``Wrapper`` around a scripted copy: hooks on the scripted modules inside are
    refused as on a scripted model (guided backprop gave the plain gradient's |map|)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Wrapper(torch.jit.script(eager(modality))).eval()


@pytest.mark.parametrize(
    ("name", "modality"),
    [
        (name, modality)
        for name in sorted(NEED_HOOKS)
        for modality in ("image", "tabular")
        if modality in registries.explainers.get(name).modalities
    ],
)
def test_an_eager_model_holding_torchscript_is_refused_in_planning(
    name: str, modality: str
) -> None:
    assert planned(name, modality, wrapped(modality)) == [
        SpecIssue(
            f"explainer '{name}' needs hooks on the model's modules, which TorchScript "
            f"models do not support. Explainers that work on TorchScript models with "
            f"{modality} data: {WORK_ON_TORCHSCRIPT[modality]}",
            ("explainers", 0, "type"),
        )
    ]


def test_explainers_without_hooks_are_planned_on_an_eager_model_holding_torchscript() -> None:
    for modality in ("image", "tabular"):
        for name in WORK_ON_TORCHSCRIPT[modality].split(", "):
            assert planned(name, modality, wrapped(modality)) == [], (name, modality)


def test_guided_backprop_refuses_an_eager_model_holding_torchscript_when_built() -> None:
    with pytest.raises(RunError) as raised:
        make_explainer("guided_backprop", wrapped("image"), {})
    assert str(raised.value) == (
        "explainer 'guided_backprop' needs hooks on the model's modules, which TorchScript "
        "models do not support"
    )


def test_an_eager_model_holds_no_torchscript() -> None:
    assert planned("guided_backprop", "image", digits_cnn()) == []


# -- end to end ------------------------------------------------------------------------------
SPEC = """\
version: 1
name: scripted
model:
  source: torchscript
  path: digits.ts
data:
  source: sklearn
  name: digits
  slice: {{start: 0, stop: 16}}
explainers:
{explainers}
report:
  formats: [html]
output: runs
"""


def run_scripted(tmp_path: Path, explainers: str) -> tuple[subprocess.CompletedProcess, Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(digits_cnn()), str(tmp_path / "digits.ts"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(explainers=explainers))
    proc = subprocess.run(
        [str(AUDITOR), "run", str(spec), "--run-id", "r1"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    return proc, spec


def test_a_torchscript_model_is_audited_end_to_end(tmp_path: Path) -> None:
    proc, _ = run_scripted(
        tmp_path,
        "  - type: integrated_gradients\n"
        "    params: {n_steps: 8}\n"
        "  - type: smoothgrad\n"
        "    params: {nt_samples: 4}\n"
        "  - type: lime\n"
        "    params: {n_samples: 32}",
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "runs" / "scripted" / "r1" / "results.json").read_text())
    assert {k: v["status"] for k, v in results["explainers"].items()} == {
        "integrated_gradients": "ok",
        "smoothgrad": "ok",
        "lime": "ok",
    }


def test_gradcam_on_a_torchscript_model_is_refused_before_anything_runs(tmp_path: Path) -> None:
    proc, spec = run_scripted(
        tmp_path, "  - type: saliency\n  - type: gradcam\n    params: {layer: features.3}"
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {spec}:12:11 explainers[1].type: explainer 'gradcam' needs hooks on the "
        "model's modules, which TorchScript models do not support. Explainers that work on "
        f"TorchScript models with image data: {WORK_ON_TORCHSCRIPT['image']}"
    ]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs").exists()
