"""The committed example weights load strictly and are accurate on the audited test split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from auditor.data.sklearn_source import SklearnDataSource
from examples.models import DigitsCNN, TabularMLP

MODELS = Path(__file__).resolve().parents[1] / "models"

CASES = [
    ("digits_cnn.safetensors", lambda: DigitsCNN(num_classes=10), "digits"),
    ("breast_cancer_mlp.safetensors", lambda: TabularMLP(), "breast_cancer"),
]


def load_model(filename: str, build: Callable[[], nn.Module]) -> nn.Module:
    model = build()
    model.load_state_dict(load_file(MODELS / filename), strict=True)
    return model.eval()


@pytest.mark.parametrize(("filename", "build", "dataset"), CASES)
def test_weights_reach_95_percent_on_test_split(
    filename: str, build: Callable[[], nn.Module], dataset: str
) -> None:
    model = load_model(filename, build)
    data = SklearnDataSource().load(SklearnDataSource.Params.model_validate({"name": dataset}))
    with torch.no_grad():
        predicted = model(data.get(np.arange(len(data)))).argmax(dim=1).numpy()
    assert len(data) == {"digits": 450, "breast_cancer": 143}[dataset]
    assert float((predicted == data.labels).mean()) >= 0.95


@pytest.mark.parametrize(("filename", "build", "dataset"), CASES)
def test_weights_are_small(filename: str, build: Callable[[], nn.Module], dataset: str) -> None:
    assert (MODELS / filename).stat().st_size < 200_000


def test_every_relu_is_its_own_module() -> None:
    # DeepLIFT hooks each nonlinearity module once per forward; reused or in-place ReLUs
    # would break it.
    for model in (DigitsCNN(), TabularMLP(in_features=4, hidden=(8, 8, 8), num_classes=3)):
        relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
        assert len({id(m) for m in relus}) == len(relus) > 0
        assert not any(m.inplace for m in relus)


def test_digits_cnn_layers_and_shapes() -> None:
    model = DigitsCNN(num_classes=10).eval()
    assert isinstance(model.get_submodule("features.3"), nn.ReLU)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_tabular_mlp_layout() -> None:
    model = TabularMLP(in_features=4, hidden=(8, 6), num_classes=3)
    assert [type(m).__name__ for m in model.layers] == [
        "Linear",
        "ReLU",
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert model(torch.zeros(5, 4)).shape == (5, 3)


def test_tabular_mlp_rejects_empty_layers() -> None:
    with pytest.raises(
        ValueError,
        match=r"layer widths must be positive, got in_features=4, "
        r"hidden=\[0\], num_classes=2",
    ):
        TabularMLP(in_features=4, hidden=(0,), num_classes=2)
