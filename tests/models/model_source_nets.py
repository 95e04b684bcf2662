"""Tiny real models for the model-source tests (imported by name, so keep it on sys.path)."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """(N, 1, 8, 8) -> conv 3x3 (4 ch) -> ReLU -> max-pool 2 -> linear -> (N, num_classes)."""

    def __init__(self, num_classes: int = 3, channels: int = 4) -> None:
        super().__init__()
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.head = nn.Linear(channels * 4 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def make_tiny(num_classes: int = 3) -> TinyNet:
    """A factory function, as some projects expose models."""
    return TinyNet(num_classes=num_classes)


def not_a_module() -> list[int]:
    return [1, 2, 3]


def seeded(seed: int, **init: int) -> TinyNet:
    """A TinyNet whose weights depend only on ``seed``."""
    torch.manual_seed(seed)
    return TinyNet(**init).eval()


def sample(seed: int = 0, n: int = 2) -> torch.Tensor:
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
