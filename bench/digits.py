"""The digits CNN and samples as auditor's runner sees them, for in-process benchmarks."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch
from common import ROOT
from safetensors.torch import load_file
from torch import nn

from auditor.data.base import TensorDataset
from auditor.data.sklearn_source import load_arrays
from auditor.explainers.base import ExplainContext
from auditor.models.base import ModelSource
from auditor.runner import explain_context

sys.path.insert(0, str(ROOT))  # examples/ is not an installed package
SEED = 0


@dataclass
class Digits:
    model: nn.Module
    inputs: torch.Tensor  # (N, 1, 8, 8)
    labels: np.ndarray
    targets: torch.Tensor  # predicted classes
    context: ExplainContext  # with the runner's 64 background samples


def digits_model() -> nn.Module:
    from examples.models import DigitsCNN

    model = DigitsCNN(num_classes=10)
    model.load_state_dict(load_file(ROOT / "models" / "digits_cnn.safetensors"))
    return ModelSource.finish(model)


def load_digits(n: int) -> Digits:
    """The first ``n`` samples of digits' "all" split, the model, and the runner's context."""
    x, y, meta = load_arrays("digits", "all")
    dataset = TensorDataset(
        torch.from_numpy(x[:n]), y[:n], modality="image", class_names=meta.class_names
    )
    indices = np.arange(len(dataset))
    model = digits_model()
    with torch.no_grad():
        targets = model(dataset.inputs).argmax(dim=1)
    context = explain_context(dataset, indices, SEED)
    return Digits(model, dataset.inputs, dataset.labels, targets, context)
