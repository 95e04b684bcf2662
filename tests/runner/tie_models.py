"""Tiny models for tests/runner/test_check_ties.py: rankings with known ties."""

from __future__ import annotations

import torch
from torch import nn


class FirstColumns(nn.Module):
    """Reads only its first two columns (weights 2 and 1); every other column has weight 0,
    so its gradient, and so its saliency importance, is exactly 0: a tie of the rest."""

    def __init__(self, in_features: int = 6) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 2)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.weight[0, :2] = torch.tensor([2.0, 1.0])
            self.linear.weight[1, :2] = torch.tensor([-2.0, -1.0])
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class FlatLinear(nn.Module):
    """A seeded linear layer on the flattened input (images of any shape)."""

    def __init__(self, in_features: int = 192, classes: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(in_features, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))
