"""Analytic truth on f(x) = W x + b, and completeness on the trained example models."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))

from tiny import ROOT, Linear, digits_batch, digits_cnn, make_explainer

from auditor.data.sklearn_source import load_arrays
from examples.models import TabularMLP


@pytest.fixture
def linear() -> tuple[Linear, torch.Tensor, torch.Tensor, torch.Tensor]:
    model = Linear(in_features=6, classes=3).eval()
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 1, 2, 1, 0])
    w_t = model.fc.weight.detach()[targets]
    return model, x, targets, w_t


def _explain(name: str, model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, **params):
    explainer = make_explainer(name, model, params, modality="tabular", input_shape=(6,))
    return explainer.explain(x, t)


def test_saliency_is_abs_w(linear) -> None:
    model, x, t, w_t = linear
    torch.testing.assert_close(_explain("saliency", model, x, t), w_t.abs(), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("input_x_gradient", {}),
        ("integrated_gradients", {"n_steps": 8}),
        ("occlusion", {"window": [1]}),
        ("deeplift", {}),
    ],
)
def test_methods_equal_w_times_x(linear, name: str, params: dict) -> None:
    model, x, t, w_t = linear
    torch.testing.assert_close(_explain(name, model, x, t, **params), w_t * x, rtol=1e-5, atol=1e-5)


def test_integrated_gradients_is_complete_on_the_digits_cnn() -> None:
    """sum(IG) = f(x) - f(0) within 1% of |f(x)| for every sample (128 steps)."""
    model = digits_cnn()
    x, _ = digits_batch(32)
    with torch.no_grad():
        logits = model(x)
        targets = logits.argmax(1)
        f_x = logits.gather(1, targets[:, None])[:, 0]
        f_0 = model(torch.zeros_like(x)).gather(1, targets[:, None])[:, 0]
    attributions = make_explainer("integrated_gradients", model, {"n_steps": 128}).explain(
        x, targets
    )
    error = (attributions.flatten(1).sum(1) - (f_x - f_0)).abs() / f_x.abs()
    assert float(error.max()) < 0.01


def test_kernel_shap_is_complete_on_the_breast_cancer_mlp() -> None:
    """KernelSHAP's values add up to f(x) - E[f(background)] for the trained tabular MLP."""
    x_test, _, _ = load_arrays("breast_cancer", "test")
    model = TabularMLP(in_features=30, num_classes=2)
    model.load_state_dict(load_file(ROOT / "models" / "breast_cancer_mlp.safetensors"))
    model.eval()
    x = torch.as_tensor(x_test[:6])
    background = torch.as_tensor(x_test[np.arange(20, 120)])
    with torch.no_grad():
        targets = model(x).argmax(1)
    explainer = make_explainer(
        "kernel_shap",
        model,
        {"n_background": 20},
        modality="tabular",
        input_shape=(30,),
        background=background,
    )
    explainer.explain(x, targets)
    with torch.no_grad():
        f_x = model(x).gather(1, targets[:, None])[:, 0].numpy()
    gaps = np.asarray(explainer.sample_stats["convergence_delta"])
    assert np.all(np.abs(gaps) / np.abs(f_x) < 0.01)
