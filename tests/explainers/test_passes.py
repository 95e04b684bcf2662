"""Pass sizes: bounded by input elements and by the model's activations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from tiny import digits_batch, digits_cnn, make_explainer

from auditor.explainers import passes
from auditor.explainers.passes import activation_elements, rows_per_pass


class Wide(nn.Module):
    """256 feature maps at the input's resolution: large activations for a small input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 256, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(256 * 8 * 8, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(x)))


def test_activations_are_counted_per_sample_from_the_leaf_modules() -> None:
    # conv 16x8x8, relu, conv 32x8x8, relu, pool 32x4x4, flatten 512, fc 64, relu, fc 10
    leaves = 1024 + 1024 + 2048 + 2048 + 512 + 512 + 64 + 64 + 10
    assert activation_elements(digits_cnn(), (1, 8, 8), torch.float32) == 2 * leaves
    wide = 256 * 64 * 2 + 256 * 64 + 10
    assert activation_elements(Wide(), (1, 8, 8), torch.float32) == 2 * wide


def test_a_wide_model_gets_fewer_rows_per_pass_than_a_narrow_one() -> None:
    x, _ = digits_batch(4)
    narrow, wide = rows_per_pass(digits_cnn(), x), rows_per_pass(Wide(), x)
    digits = 2 * (1024 + 1024 + 2048 + 2048 + 512 + 512 + 64 + 64 + 10)
    assert narrow == 2**24 // digits == 1148  # about 64 MB of activations a pass
    assert wide == 2**24 // (2 * (256 * 64 * 3 + 10)) == 170 < narrow


def test_a_large_model_still_gets_a_few_rows_but_never_more_than_memory_allows(
    monkeypatch,
) -> None:
    x, _ = digits_batch(4)
    monkeypatch.setattr(passes, "CACHE_ELEMENTS", 1000)  # less than one row of the CNN
    assert rows_per_pass(digits_cnn(), x) == passes.MIN_ROWS == 4
    monkeypatch.setattr(passes, "ACTIVATION_ELEMENTS", 30_000)  # memory: 2 rows of 14,612
    assert rows_per_pass(digits_cnn(), x) == 2
    monkeypatch.setattr(passes, "ROW_ELEMENTS", 64)  # input: 1 row
    assert rows_per_pass(digits_cnn(), x) == 1
    monkeypatch.setattr(passes, "ROW_ELEMENTS", 10)  # not even one: still 1
    assert rows_per_pass(digits_cnn(), x) == 1


def test_measuring_leaves_no_hooks() -> None:
    model = Wide()
    activation_elements(model, (1, 8, 8), torch.float32)
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("integrated_gradients", {"n_steps": 6}),
        ("smoothgrad", {"nt_samples": 5, "nt_type": "vargrad"}),
        ("smoothgrad", {"nt_samples": 5, "base": "integrated_gradients", "n_steps": 3}),
    ],
)
def test_small_passes_give_the_same_attributions(name, params, monkeypatch) -> None:
    """Fewer rows per pass than samples (IG) or than copies (SmoothGrad): same numbers."""
    model = digits_cnn()
    x, _ = digits_batch(6)
    with torch.no_grad():
        t = model(x).argmax(1)
    expected = make_explainer(name, model, params).explain(x, t)
    monkeypatch.setattr(passes, "ROW_ELEMENTS", 3 * 64)  # 3 rows a pass
    # float32 sums in another order; vargrad (E[a^2] - E[a]^2) cancels, hence 1e-5
    torch.testing.assert_close(
        make_explainer(name, model, params).explain(x, t), expected, atol=1e-5, rtol=1e-4
    )
