"""The run's fast copy of the model for forward passes without gradients."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from captum.attr import Occlusion
from torch import nn

sys.path.insert(0, str(Path(__file__).parent / "explainers"))

from tiny import digits_batch, digits_cnn, make_explainer

from auditor.explainers.base import ExplainContext
from auditor.inference import FastInference


class Branchy(nn.Module):
    """A model whose path depends on the data: tracing would record one branch only."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.flatten(1))
        if out.sum() > 0:
            return out
        return -out


class Pair(nn.Module):
    """A model that returns two tensors: the copy would not give logits."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.flatten(1), x.flatten(1)


def test_digits_cnn_gets_a_frozen_copy_with_the_same_outputs() -> None:
    model = digits_cnn()
    x, _ = digits_batch(40)
    fast = FastInference(model, x[:8])
    assert fast.describe() == "eager (not needed by this run)"  # built on first use only
    copy = fast.for_model(model)
    assert copy is not model and isinstance(copy, torch.jit.ScriptModule)
    assert fast.describe() == "frozen TorchScript copy for forward passes without gradients"
    with torch.no_grad():
        for batch in (x, x[:3], x[:1]):  # batch sizes it was not traced with
            torch.testing.assert_close(copy(batch), model(batch), rtol=1e-4, atol=1e-5)


def test_another_model_runs_itself() -> None:
    model, other = digits_cnn(), digits_cnn()
    fast = FastInference(model, digits_batch(4)[0])
    assert fast.for_model(other) is other  # e.g. a randomized copy


def test_data_dependent_control_flow_keeps_the_model() -> None:
    model = Branchy().eval()
    fast = FastInference(model, digits_batch(4)[0])
    assert fast.for_model(model) is model
    assert fast.describe().startswith("eager (tracing is not faithful: ")


def test_a_model_with_two_outputs_keeps_the_model() -> None:
    model = Pair().eval()
    fast = FastInference(model, digits_batch(4)[0])
    assert fast.for_model(model) is model
    assert fast.describe().startswith("eager (")


def test_occlusion_through_the_copy_equals_captum_on_the_model() -> None:
    model = digits_cnn()
    x, _ = digits_batch(12)
    with torch.no_grad():
        t = model(x).argmax(1)
    explainer = make_explainer("occlusion", model)
    explainer.context = ExplainContext(
        modality="image", input_shape=(1, 8, 8), inference=FastInference(model, x[:8])
    )
    ours = explainer.explain(x, t)
    assert explainer.forward_model is not model  # it did use the copy
    theirs = Occlusion(model).attribute(
        x, sliding_window_shapes=(1, 1, 1), strides=(1, 1, 1), baselines=0.0, target=t
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert ours.abs().max() > 0.1
