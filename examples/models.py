"""Small example classifiers whose trained weights live in ``models/``.

Every activation is its own ``nn.ReLU`` module (never reused, never in place, never
``F.relu``): DeepLIFT replaces each nonlinearity's gradient through module hooks, and a
module called twice or a functional call would escape it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn


class DigitsCNN(nn.Module):
    """A two-convolution network for scikit-learn's 8x8 digits.

    Shape: ``(N, 1, 8, 8)`` in ``[0, 1]`` -> logits ``(N, num_classes)``.
    ``features.3`` is the last ReLU before pooling (32 maps of 8x8): the layer for Grad-CAM.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class TabularMLP(nn.Module):
    """A multilayer perceptron for standardized tabular features.

    Shape: ``(N, in_features)`` -> logits ``(N, num_classes)``. The layers live in
    ``self.layers``: ``Linear, ReLU`` per hidden width, then the output ``Linear``.
    """

    def __init__(
        self,
        in_features: int = 30,
        hidden: Sequence[int] = (32, 16),
        num_classes: int = 2,
    ) -> None:
        super().__init__()
        widths = [in_features, *hidden]
        if any(int(w) < 1 for w in [*widths, num_classes]):
            raise ValueError(
                f"layer widths must be positive, got in_features={in_features}, "
                f"hidden={list(hidden)}, num_classes={num_classes}"
            )
        layers: list[nn.Module] = []
        for width_in, width_out in pairwise(widths):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
