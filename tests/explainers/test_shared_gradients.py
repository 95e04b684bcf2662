"""Saliency and Input x Gradient: equal to Captum, and one gradient per batch between them."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from captum.attr import InputXGradient as CaptumInputXGradient
from captum.attr import Saliency as CaptumSaliency
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from tiny import digits_batch, digits_cnn, make_explainer

from auditor.explainers.gradients import SharedGradients


class Counting(nn.Module):
    """A model that counts its forward passes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(x)


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model = digits_cnn()
    x, _ = digits_batch(10)
    with torch.no_grad():
        targets = model(x).argmax(1)
    return model, x, targets


@pytest.mark.parametrize("absolute", [True, False])
def test_saliency_equals_captum(digits, absolute) -> None:
    model, x, t = digits
    ours = make_explainer("saliency", model, {"abs": absolute}).explain(x, t)
    theirs = CaptumSaliency(model).attribute(x.clone().requires_grad_(), target=t, abs=absolute)
    torch.testing.assert_close(ours, theirs.detach(), rtol=0, atol=0)
    assert ours.abs().max() > 0


def shared_pair(model: nn.Module) -> tuple[SharedGradients, object, object]:
    shared = SharedGradients(model, readers=2)
    saliency = make_explainer("saliency", model)
    ixg = make_explainer("input_x_gradient", model)
    for explainer in (saliency, ixg):
        explainer.context = replace(explainer.context, gradients=shared)
    return shared, saliency, ixg


def test_the_second_reader_gets_the_gradient_without_a_forward_pass(digits) -> None:
    _, x, t = digits
    model = Counting(digits_cnn())
    shared, saliency, ixg = shared_pair(model)
    first = [saliency.explain(x[:5], t[:5]), saliency.explain(x[5:], t[5:])]
    assert model.calls == 2 and len(shared) == 2
    second = [ixg.explain(x[:5], t[:5]), ixg.explain(x[5:], t[5:])]
    assert model.calls == 2  # served from the store
    assert len(shared) == 0 and shared.kept_bytes == 0  # dropped after the last reader
    alone = digits_cnn()
    torch.testing.assert_close(torch.cat(first), make_explainer("saliency", alone).explain(x, t))
    theirs = CaptumInputXGradient(alone).attribute(x.clone().requires_grad_(), target=t)
    torch.testing.assert_close(torch.cat(second), theirs.detach())


def test_another_model_or_other_targets_are_computed_not_served(digits) -> None:
    model, x, t = digits
    shared, saliency, _ = shared_pair(model)
    saliency.explain(x, t)
    other_targets = (t + 1) % 10
    assert shared.computed == 1
    changed = saliency.explain(x, other_targets)
    assert shared.computed == 2
    expected = CaptumSaliency(model).attribute(x.clone().requires_grad_(), target=other_targets)
    torch.testing.assert_close(changed, expected.detach())
    wrapper = Counting(model)  # another model object, e.g. randomization_sanity's copy
    other = make_explainer("saliency", wrapper)
    other.context = saliency.context
    other.explain(x, t)
    assert wrapper.calls == 1  # computed, although the store holds this batch for `model`
    assert shared.computed == 2 and len(shared) == 2  # neither kept nor counted


def test_the_budget_bounds_what_is_kept(digits) -> None:
    model, x, t = digits
    shared = SharedGradients(model, readers=2, budget=x[:5].nbytes)
    shared.get(model, x[:5], t[:5])
    shared.get(model, x[5:], t[5:])
    assert len(shared) == 1 and shared.kept_bytes == x[:5].nbytes


def test_the_store_empties_when_the_last_reader_job_ends(digits) -> None:
    """A reader that is reused or fails reads nothing: its share must not stay in memory."""
    model, x, t = digits
    shared = SharedGradients(model, readers=2)
    shared.get(model, x, t)
    assert len(shared) == 1  # kept for the second reader
    shared.reader_done()  # the first reader's job ended
    assert len(shared) == 1
    shared.reader_done()  # the second ended without reading (e.g. reused from a run)
    assert len(shared) == 0 and shared.kept_bytes == 0


def test_a_reader_after_the_others_ended_keeps_nothing(digits) -> None:
    model, x, t = digits
    shared = SharedGradients(model, readers=2)
    shared.reader_done()  # the first reader was reused: the second is the last one
    shared.get(model, x, t)
    assert len(shared) == 0
