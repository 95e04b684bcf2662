"""A digits CNN that counts its forward passes (a test model for the runner)."""

from __future__ import annotations

from typing import ClassVar

import torch

from examples.models import DigitsCNN


class CountingDigitsCNN(DigitsCNN):
    calls: ClassVar[int] = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CountingDigitsCNN.calls += 1
        return super().forward(x)
