"""The block graph behind the architecture diagram, checked on the graph (not on pixels):
blocks, types, shapes, parameters, "×N" runs, skip and concatenation edges, the fallback."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torchvision
from torch import nn

from auditor.models.graph import BlockGraph, ModelGraph, model_graph
from auditor.models.info import LayerInfo
from examples.models import DigitsCNN, TabularMLP


def chain(graph: BlockGraph) -> list[tuple[str, str, list[int] | None, int]]:
    return [(n.name, n.type, n.shape, n.repeat) for n in graph.nodes]


def edges_by_name(graph: BlockGraph) -> set[tuple[str, str]]:
    return {(graph.node(a).name, graph.node(b).name) for a, b in graph.edges}


def test_digits_cnn_is_a_chain_of_its_layers_with_their_shapes() -> None:
    g = model_graph(DigitsCNN().eval(), torch.rand(1, 1, 8, 8))
    assert g.source == "torch.fx" and g.note == "" and g.details == []
    assert chain(g.main) == [
        ("x", "Input", [1, 1, 8, 8], 1),
        ("features.0", "Conv2d", [1, 16, 8, 8], 1),
        ("features.1", "ReLU", [1, 16, 8, 8], 1),
        ("features.2", "Conv2d", [1, 32, 8, 8], 1),
        ("features.3", "ReLU", [1, 32, 8, 8], 1),
        ("features.4", "MaxPool2d", [1, 32, 4, 4], 1),
        ("classifier.0", "Flatten", [1, 512], 1),
        ("classifier.1", "Linear", [1, 64], 1),
        ("classifier.2", "ReLU", [1, 64], 1),
        ("classifier.3", "Linear", [1, 10], 1),
        ("output", "Output", [1, 10], 1),
    ]
    ids = [n.id for n in g.main.nodes]
    assert g.main.edges == list(itertools.pairwise(ids))
    assert [n.params for n in g.main.nodes][1:4] == [160, 0, 4640]


def test_tabular_mlp_blocks_and_parameters_add_up() -> None:
    model = TabularMLP().eval()
    g = model_graph(model, torch.rand(1, 30))
    assert [(n.name, n.type, n.shape) for n in g.main.nodes[1:-1]] == [
        ("layers.0", "Linear", [1, 32]),
        ("layers.1", "ReLU", [1, 32]),
        ("layers.2", "Linear", [1, 16]),
        ("layers.3", "ReLU", [1, 16]),
        ("layers.4", "Linear", [1, 2]),
    ]
    assert sum(n.params for n in g.main.nodes) == sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def resnet18() -> ModelGraph:
    torch.manual_seed(0)
    return model_graph(torchvision.models.resnet18().eval(), torch.rand(1, 3, 64, 64))


def test_resnet18_blocks_collapse_identical_basic_blocks(resnet18: ModelGraph) -> None:
    assert [(n.name, n.type, n.repeat) for n in resnet18.main.nodes] == [
        ("x", "Input", 1),
        ("conv1", "Conv2d", 1),
        ("bn1", "BatchNorm2d", 1),
        ("relu", "ReLU", 1),
        ("maxpool", "MaxPool2d", 1),
        ("layer1.0–1", "BasicBlock", 2),  # two identical blocks: one box "×2"
        ("layer2.0", "BasicBlock", 1),  # has a downsample: not identical to layer2.1
        ("layer2.1", "BasicBlock", 1),
        ("layer3.0", "BasicBlock", 1),
        ("layer3.1", "BasicBlock", 1),
        ("layer4.0", "BasicBlock", 1),
        ("layer4.1", "BasicBlock", 1),
        ("avgpool", "AdaptiveAvgPool2d", 1),
        ("flatten", "flatten", 1),
        ("fc", "Linear", 1),
        ("output", "Output", 1),
    ]
    shapes = {n.name: n.shape for n in resnet18.main.nodes}
    assert shapes["layer1.0–1"] == [1, 64, 16, 16]
    assert shapes["layer4.1"] == [1, 512, 2, 2]
    assert shapes["flatten"] == [1, 512]
    assert shapes["output"] == [1, 1000]
    merged = resnet18.main.nodes[5]
    assert merged.params == 2 * 73_984  # both blocks' parameters
    assert sum(n.params for n in resnet18.main.nodes) == 11_689_512


def test_resnet18_detail_shows_both_skip_paths_into_an_add(resnet18: ModelGraph) -> None:
    (detail,) = resnet18.details
    assert (detail.title, detail.example, detail.instances) == ("BasicBlock", "layer2.0", 8)
    assert [(n.name, n.type) for n in detail.nodes if n.kind == "module"] == [
        ("conv1", "Conv2d"),
        ("bn1", "BatchNorm2d"),
        ("relu", "ReLU"),
        ("conv2", "Conv2d"),
        ("bn2", "BatchNorm2d"),
        ("downsample.0", "Conv2d"),
        ("downsample.1", "BatchNorm2d"),
        ("relu", "ReLU"),
    ]
    (add,) = [n for n in detail.nodes if n.type == "add"]
    assert sorted(detail.node(i).name for i in detail.inputs_of(add.id)) == [
        "bn2",
        "downsample.1",
    ]
    assert add.shape == [1, 128, 8, 8]
    edges = edges_by_name(detail)
    assert ("input", "conv1") in edges and ("input", "downsample.0") in edges


def test_mobilenet_v3_small_blocks_runs_and_details() -> None:
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small().eval()
    g = model_graph(model, torch.rand(1, 3, 64, 64))
    names = [(n.name, n.type, n.repeat) for n in g.main.nodes]
    assert names[:3] == [
        ("x", "Input", 1),
        ("features.0", "Conv2dNormActivation", 1),
        ("features.1", "InvertedResidual", 1),
    ]
    assert ("features.5–6", "InvertedResidual", 2) in names
    assert ("features.10–11", "InvertedResidual", 2) in names
    assert names[-6:] == [
        ("flatten", "flatten", 1),
        ("classifier.0", "Linear", 1),
        ("classifier.1", "Hardswish", 1),
        ("classifier.2", "Dropout", 1),
        ("classifier.3", "Linear", 1),
        ("output", "Output", 1),
    ]
    assert len(g.main.nodes) == 19  # 21 blocks with two runs of two
    assert sum(n.params for n in g.main.nodes) == sum(p.numel() for p in model.parameters())
    assert [(d.title, d.instances) for d in g.details] == [
        ("InvertedResidual", 11),
        ("Conv2dNormActivation", 2),
    ]
    residual = g.details[0]
    (add,) = [n for n in residual.nodes if n.type == "add"]
    assert [residual.node(i).name for i in residual.inputs_of(add.id)] == ["block.3.1", "input"]
    (mul,) = [n for n in residual.nodes if n.type == "mul"]  # squeeze-and-excitation's scale
    assert len(residual.inputs_of(mul.id)) == 2


class TwoInputs(nn.Module):
    """Two inputs, concatenated, and a residual add at the top level."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(3, 8)
        self.head = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = torch.cat([self.a(x), self.b(y)], dim=1)
        return self.head(z) + z


def test_multiple_inputs_concatenation_and_a_top_level_skip() -> None:
    g = model_graph(TwoInputs(), (torch.rand(1, 4), torch.rand(1, 3)))  # type: ignore[arg-type]
    edges = edges_by_name(g.main)
    (cat,) = [n for n in g.main.nodes if n.type == "cat"]
    (add,) = [n for n in g.main.nodes if n.type == "add"]
    assert cat.shape == [1, 16]
    assert {("x", "a"), ("y", "b"), ("a", cat.name), ("b", cat.name)} <= edges
    assert {("head", add.name), (cat.name, add.name)} <= edges
    assert [n.kind for n in g.main.nodes].count("input") == 2


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = self.body(x)
        return self.out(x)


def test_a_model_fx_cannot_trace_is_drawn_from_its_module_tree() -> None:
    layers = [
        LayerInfo("body.0", "Linear", [1, 4], 20),
        LayerInfo("out", "Linear", [1, 2], 10),
    ]
    g = model_graph(Branchy(), torch.ones(1, 4), layers)
    assert g.source == "module tree"
    assert g.note.startswith("torch.fx could not trace the model (TraceError: ")
    assert g.note.endswith(
        "the diagram shows its modules in the order they are registered, without skip connections."
    )
    assert [(n.name, n.type, n.shape) for n in g.main.nodes] == [
        ("input", "Input", None),
        ("body.0", "Linear", [1, 4]),
        ("body.1", "ReLU", None),
        ("body.2", "Linear", None),
        ("body.3", "ReLU", None),
        ("out", "Linear", [1, 2]),
        ("output", "Output", None),
    ]


def test_a_wrapper_around_the_network_is_drawn_as_the_network() -> None:
    class Wrapper(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = DigitsCNN()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    g = model_graph(Wrapper().eval(), torch.rand(1, 1, 8, 8))
    assert [n.name for n in g.main.nodes][1:3] == ["net.features.0", "net.features.1"]


def test_the_graph_survives_results_json(resnet18: ModelGraph) -> None:
    import json

    raw = json.loads(json.dumps(resnet18.to_dict()))
    assert ModelGraph.from_dict(raw) == resnet18
    assert ModelGraph.from_dict(None) is None
    assert ModelGraph.from_dict({"main": {"nodes": [{"name": "no id"}]}}) is None


def test_a_torchscript_model_is_drawn_from_its_module_tree() -> None:
    with warnings.catch_warnings():  # torch.jit.script is deprecated: users still ship it
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(DigitsCNN().eval())
    g = model_graph(scripted, torch.rand(1, 1, 8, 8), [])
    assert g.source == "module tree"
    assert g.note == (
        "torch.fx could not trace the model (TypeError: a TorchScript module has no Python "
        "forward to trace); the diagram shows its modules in the order they are registered, "
        "without skip connections."
    )
    assert [(n.name, n.type) for n in g.main.nodes][1:4] == [
        ("features.0", "Conv2d"),
        ("features.1", "ReLU"),
        ("features.2", "Conv2d"),
    ]
