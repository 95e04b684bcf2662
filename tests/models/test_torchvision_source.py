"""Model source ``torchvision``: real architectures, random init or a local weights file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save_file

from auditor.errors import SpecError
from auditor.models.torchvision_source import TorchvisionModelSource
from auditor.registries import models

Params = TorchvisionModelSource.Params


def _load(tmp_path: Path, seed: int = 0, **data: Any):
    params = Params.model_validate(data, context={"base_dir": tmp_path})
    torch.manual_seed(seed)
    return TorchvisionModelSource().load(params)


def _image() -> torch.Tensor:
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_registered_under_its_name() -> None:
    assert models.get("torchvision") is TorchvisionModelSource


def test_resnet18_random_init_is_deterministic_under_the_seed(tmp_path: Path) -> None:
    first = _load(tmp_path, seed=3, arch="resnet18", num_classes=10)
    again = _load(tmp_path, seed=3, arch="resnet18", num_classes=10)
    other = _load(tmp_path, seed=4, arch="resnet18", num_classes=10)

    assert first.module.fc.out_features == 10
    assert not first.module.training
    assert torch.equal(first.module(_image()), again.module(_image()))
    assert not torch.equal(first.module(_image()), other.module(_image()))
    assert first.description == "torchvision resnet18, num_classes=10 with random initialisation"
    assert first.weights_sha256 is None


def test_resnet18_weights_file_round_trip(tmp_path: Path) -> None:
    trained = _load(tmp_path, seed=1, arch="resnet18", num_classes=10).module
    path = tmp_path / "resnet18.safetensors"
    save_file(trained.state_dict(), path)

    loaded = _load(tmp_path, seed=2, arch="resnet18", num_classes=10, weights=path.name)

    assert torch.equal(loaded.module(_image()), trained(_image()))
    assert loaded.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.description == (
        "torchvision resnet18, num_classes=10 with weights resnet18.safetensors"
    )


def test_weights_for_another_head_do_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.pt"
    torch.save(_load(tmp_path, arch="resnet18", num_classes=10).module.state_dict(), path)

    with pytest.raises(SpecError) as excinfo:
        _load(tmp_path, arch="resnet18", weights="resnet18.pt")

    (issue,) = excinfo.value.issues
    assert issue.loc == ("model", "weights")
    assert issue.message == (
        f"weights file {path} does not fit the model (ResNet): shape mismatches: "
        "fc.weight (file [10, 512], model [1000, 512]), fc.bias (file [10], model [1000])"
    )


def test_backbone_weights_are_never_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # lraspp's builder defaults to ImageNet backbone weights; they must not be fetched.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    loaded = _load(tmp_path, arch="lraspp_mobilenet_v3_large", num_classes=2)

    assert loaded.module(_image())["out"].shape == (1, 2, 32, 32)
    assert not (tmp_path / "torch_home").exists()


@pytest.mark.parametrize(
    ("data", "loc", "message"),
    [
        (
            {"arch": "resnt18"},
            ("arch",),
            "Value error, unknown torchvision architecture 'resnt18'. Did you mean: resnet18?",
        ),
        (
            {"arch": "resnet18", "num_classes": 0},
            ("num_classes",),
            "Input should be greater than or equal to 1",
        ),
        (
            {"arch": "resnet18", "init": {"weights": "IMAGENET1K_V1"}},
            ("init",),
            "Value error, init may not set weights: use the model's weights (a local file) "
            "and num_classes keys instead",
        ),
        (
            {"arch": "resnet18", "pretrained": True},
            ("pretrained",),
            "Extra inputs are not permitted",
        ),
    ],
)
def test_params_errors(
    tmp_path: Path, data: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Params.model_validate(data, context={"base_dir": tmp_path})

    (error,) = excinfo.value.errors()
    assert error["loc"] == loc
    assert error["msg"] == message


def test_init_the_builder_rejects(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as excinfo:
        _load(tmp_path, arch="resnet18", init={"widht": 2})

    (issue,) = excinfo.value.issues
    assert issue.loc == ("model", "init")
    assert issue.message == (
        "torchvision resnet18(widht=2) failed: TypeError: ResNet.__init__() got an unexpected "
        "keyword argument 'widht'"
    )
