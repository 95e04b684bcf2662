"""describe_model: layer names, output shapes from one forward pass, sizes, no hooks left."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import torchvision
from model_source_nets import sample, seeded
from torch import nn

from auditor.errors import RunError
from auditor.models.base import LoadedModel, ModelSource
from auditor.models.info import MAX_LAYER_ROWS, LayerInfo, LayerTable, describe_model, layer_table


def _loaded(module: nn.Module, sha: str | None = None) -> LoadedModel:
    return LoadedModel(ModelSource.finish(module), "python", "test model", weights_sha256=sha)


def _hooks_left(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in module.modules())


def test_tiny_net_layers_shapes_and_params() -> None:
    info = describe_model(_loaded(seeded(0), sha="ab" * 32), sample(n=4))

    assert info.class_name == "TinyNet"
    assert info.total_params == (4 * 1 * 9 + 4) + (64 * 3 + 3)
    assert info.output_shape == [1, 3]
    assert info.weights_sha256 == "ab" * 32
    assert info.layers == [
        LayerInfo("features", "Sequential", [1, 4, 4, 4], 0),
        LayerInfo("features.0", "Conv2d", [1, 4, 8, 8], 40),
        LayerInfo("features.1", "ReLU", [1, 4, 8, 8], 0),
        LayerInfo("features.2", "MaxPool2d", [1, 4, 4, 4], 0),
        LayerInfo("head", "Linear", [1, 3], 195),
    ]
    assert info.notes == []


def test_to_dict_is_json_ready() -> None:
    data = describe_model(_loaded(seeded(0)), sample()).to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["layers"][1] == {
        "name": "features.0",
        "type": "Conv2d",
        "output_shape": [1, 4, 8, 8],
        "params": 40,
    }


def test_no_hooks_remain_after_many_calls_and_after_a_failed_forward() -> None:
    loaded = _loaded(seeded(0))
    for _ in range(5):
        describe_model(loaded, sample())
    assert _hooks_left(loaded.module) == 0

    with pytest.raises(RunError) as excinfo:
        describe_model(loaded, torch.zeros(1, 3, 8, 8))
    assert str(excinfo.value).startswith(
        "the model's forward pass failed on a sample of shape [1, 3, 8, 8]: RuntimeError: "
    )
    assert _hooks_left(loaded.module) == 0


def test_resnet18_deep_layer_names() -> None:
    torch.manual_seed(0)
    model = torchvision.models.get_model("resnet18", weights=None, num_classes=10)
    info = describe_model(_loaded(model), torch.rand(1, 3, 32, 32))

    layers = {layer.name: layer for layer in info.layers}
    assert layers["layer4.1.conv2"].output_shape == [1, 512, 1, 1]
    assert layers["layer4.1.conv2"].params == 512 * 512 * 9
    assert layers["fc"].output_shape == [1, 10]
    assert info.total_params == sum(p.numel() for p in model.parameters())
    assert sum(layer.params for layer in info.layers) == info.total_params
    assert _hooks_left(model) == 0


def test_torchscript_is_described_without_layer_shapes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.trace(seeded(0), sample())

    info = describe_model(_loaded(scripted), sample())

    assert info.class_name == "TinyNet"
    assert info.total_params == 235
    assert info.output_shape == [1, 3]
    assert [(layer.name, layer.type, layer.output_shape) for layer in info.layers] == [
        ("features", "Sequential", None),
        ("features.0", "Conv2d", None),
        ("features.1", "ReLU", None),
        ("features.2", "MaxPool2d", None),
        ("head", "Linear", None),
    ]
    assert info.notes == ["no output shapes for 5 TorchScript modules"]


def _table(arch: str) -> tuple[list[LayerInfo], int, LayerTable]:
    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, weights=None, num_classes=3)
    info = describe_model(_loaded(model), torch.rand(1, 3, 64, 64))
    return info.layers, info.total_params, layer_table(info.layers)


def test_resnet18_table_merges_identical_blocks_and_folds_their_insides() -> None:
    layers, total, table = _table("resnet18")

    assert len(layers) == 67 and table.modules == 67
    assert len(table.rows) <= MAX_LAYER_ROWS and table.omitted == 0
    assert [(r.name, r.type, r.repeat, r.folded) for r in table.rows[4:8]] == [
        ("layer1", "Sequential", 1, 0),
        ("layer1.0–1", "BasicBlock", 2, 10),  # the two blocks are identical: one row
        ("layer2", "Sequential", 1, 0),
        ("layer2.0", "BasicBlock", 1, 8),  # with its downsample: not like layer2.1
    ]
    assert table.rows[5].output_shape == [1, 64, 16, 16]
    assert table.rows[5].params == 2 * (2 * 64 * 64 * 9 + 2 * 2 * 64)
    assert sum(r.params for r in table.rows) == total  # nothing is lost by folding
    assert [r.name for r in table.rows if r.depth == 0] == [
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"
    ]  # fmt: skip


def test_mobilenet_v3_small_table_fits_a_page() -> None:
    layers, total, table = _table("mobilenet_v3_small")

    assert len(layers) == 208
    assert len(table.rows) <= MAX_LAYER_ROWS
    assert sum(r.params for r in table.rows) == total
    rows = {r.name: r for r in table.rows}
    # InvertedResidual wraps one `block`: its row holds the block's 14 modules
    assert (rows["features.1"].type, rows["features.1"].folded) == ("InvertedResidual", 14)
    assert "features.1.block" not in rows
    assert rows["features.5–6"].repeat == 2
    assert rows["classifier.3"].output_shape == [1, 3]


def test_a_small_model_keeps_every_module_and_a_long_flat_one_is_cut() -> None:
    small = describe_model(_loaded(seeded(0)), sample()).layers
    table = layer_table(small)
    assert [r.name for r in table.rows] == [layer.name for layer in small]
    assert table.depth is None and table.rows[0].expanded

    flat = [LayerInfo(f"{i}", "Linear", [1, i + 1], i + 1) for i in range(50)]
    table = layer_table(flat, max_rows=40)
    assert len(table.rows) == 40 and table.omitted == 10
