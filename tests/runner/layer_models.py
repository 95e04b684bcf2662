"""Tiny models with known layer activations (for tests/runner/test_layer_stats.py)."""

from __future__ import annotations

import torch
from torch import nn


class HalfDeadMLP(nn.Module):
    """``Linear(in, hidden) -> ReLU -> Linear(hidden, 2)`` whose first ``dead`` hidden
    units have weight 0 and bias -1: their ReLU output is 0 on every input (dead).

    The other hidden units have weight 0 and bias +1 (always 1), except the last, which
    copies the first input column, so the model still reads its input.
    """

    def __init__(self, in_features: int = 30, hidden: int = 8, dead: int = 6) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden)
        self.act = nn.ReLU()
        self.out = nn.Linear(hidden, 2)
        with torch.no_grad():
            self.hidden.weight.zero_()
            self.hidden.bias.fill_(1.0)
            self.hidden.bias[:dead] = -1.0
            self.hidden.weight[hidden - 1, 0] = 1.0
            self.hidden.bias[hidden - 1] = 0.0
            self.out.weight.zero_()
            self.out.weight[1, hidden - 1] = 1.0
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.hidden(x)))


class DeadConvNet(nn.Module):
    """A CNN for 8x8 digits whose first ReLU has 12 of its 16 channels dead (bias -100)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 8, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * 8 * 8, num_classes))
        with torch.no_grad():
            self.features[0].bias[:12] = -100.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
