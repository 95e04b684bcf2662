"""Tiny models with known attributions, shared by the explainer tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from auditor import registries
from auditor.explainers.base import ExplainContext, Explainer

ROOT = Path(__file__).resolve().parents[2]


class Linear(nn.Module):
    """f(x) = W x + b with fixed seeded weights: attributions are known in closed form."""

    def __init__(self, in_features: int = 6, classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.fc = nn.Linear(in_features, classes)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(classes, in_features, generator=gen))
            self.fc.bias.copy_(torch.randn(classes, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


class TinyCNN(nn.Module):
    """A small seeded CNN on 1x8x8 images with separate ReLU modules (DeepLIFT-friendly)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1), nn.ReLU()
        )
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def digits_cnn() -> nn.Module:
    """The committed example CNN, trained on scikit-learn digits, in eval mode."""
    from examples.models import DigitsCNN

    model = DigitsCNN(num_classes=10)
    model.load_state_dict(load_file(ROOT / "models" / "digits_cnn.safetensors"))
    return model.eval()


def digits_batch(n: int = 16, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` digits of a split as (N, 1, 8, 8) in [0, 1], with labels."""
    from auditor.data.sklearn_source import SklearnDataSource

    params = SklearnDataSource.Params.model_validate({"name": "digits", "split": split})
    data = SklearnDataSource().load(params)
    import numpy as np

    idx = np.arange(n)
    return data.get(idx), torch.as_tensor(data.labels[idx])


def make_explainer(
    name: str,
    model: nn.Module,
    params: dict[str, Any] | None = None,
    *,
    modality: str = "image",
    input_shape: tuple[int, ...] = (1, 8, 8),
    background: torch.Tensor | None = None,
    seed: int = 0,
) -> Explainer:
    """A registered explainer with validated params, as the runner builds it."""
    cls = registries.explainers.get(name)
    context = ExplainContext(
        modality=modality,  # type: ignore[arg-type]
        input_shape=input_shape,
        seed=seed,
        background=background,
    )
    return cls(model, cls.Params.model_validate(params or {}), context)
