"""``precision: bfloat16``: CPU autocast, channels_last for convolutional models."""

from __future__ import annotations

import pytest
import torch
from conftest import ROOT
from safetensors.torch import load_file
from torch import nn

from auditor.data.sklearn_source import load_arrays
from auditor.runner import with_precision
from examples.models import DigitsCNN, TabularMLP


def digits_model() -> DigitsCNN:
    model = DigitsCNN(10)
    model.load_state_dict(load_file(ROOT / "models" / "digits_cnn.safetensors"))
    return model.eval()


def test_float32_is_the_model_itself() -> None:
    model = digits_model()
    assert with_precision(model, "float32") is model


def test_bfloat16_convolutions_run_channels_last_and_return_float32() -> None:
    x = torch.as_tensor(load_arrays("digits", "test")[0][:64])
    with torch.no_grad():
        expected = digits_model()(x)
        wrapped = with_precision(digits_model(), "bfloat16", x[:2])
        out = wrapped(x)
    convs = [m for m in wrapped.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert out.dtype == torch.float32
    assert (out.argmax(1) == expected.argmax(1)).float().mean() >= 0.95
    torch.testing.assert_close(out, expected, atol=0.25, rtol=0.05)
    assert not torch.equal(out, expected)  # it did run in bfloat16


def test_bfloat16_leaves_a_model_without_convolutions_in_its_layout() -> None:
    mlp = TabularMLP(30, num_classes=2).eval()
    wrapped = with_precision(mlp, "bfloat16", torch.randn(2, 30))
    assert not wrapped.channels_last
    with torch.no_grad():
        assert wrapped(torch.randn(4, 30)).dtype == torch.float32


class ViewsAfterConv(nn.Module):
    """Flattens a convolution's output with ``view``: fails on channels_last tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).view(len(x), -1))


def test_bfloat16_keeps_the_default_layout_when_the_model_needs_it() -> None:
    x = torch.as_tensor(load_arrays("digits", "test")[0][:4])
    model = ViewsAfterConv().eval()
    with pytest.raises(RuntimeError, match="view"):
        model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    model.to(memory_format=torch.contiguous_format)
    wrapped = with_precision(model, "bfloat16", x[:2])
    assert not wrapped.channels_last
    assert model.conv.weight.is_contiguous()  # the trial's conversion is undone
    with torch.no_grad():
        assert wrapped(x).shape == (4, 10)
