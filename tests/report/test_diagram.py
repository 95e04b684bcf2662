"""The architecture diagram as SVG: valid XML, its boxes' text, escaped names, one page,
deterministic; and the report's Model section leading with it (HTML and PDF)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch
import torchvision
from pypdf import PdfReader
from torch import nn

from auditor.models.graph import ModelGraph, model_graph
from auditor.report import render
from auditor.report.diagram import MAX_HEIGHT, MAX_WIDTH, svg
from auditor.report.source import ReportSource
from auditor.report.view import build_view
from auditor.run_folder import RunFolder
from examples.models import DigitsCNN, TabularMLP

SVG = "{http://www.w3.org/2000/svg}"


def texts(markup: str) -> list[str]:
    """Each <text> line as a reader selects it (its tspans joined)."""
    root = ET.fromstring(markup)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def size(markup: str) -> tuple[float, float]:
    root = ET.fromstring(markup)
    return float(root.get("width", 0)), float(root.get("height", 0))


@pytest.fixture(scope="module")
def graphs() -> dict[str, ModelGraph]:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 224, 224)
    return {
        "digits": model_graph(DigitsCNN().eval(), torch.rand(1, 1, 8, 8)),
        "mlp": model_graph(TabularMLP().eval(), torch.rand(1, 30)),
        "resnet18": model_graph(torchvision.models.resnet18().eval(), image),
        "mobilenet": model_graph(torchvision.models.mobilenet_v3_small().eval(), image),
    }


def test_boxes_say_type_name_shape_and_parameters(graphs: dict[str, ModelGraph]) -> None:
    lines = texts(svg(graphs["resnet18"].main, "m", "resnet18"))
    assert lines[:4] == [
        "Input x",
        "3 × 224 × 224",
        "Conv2d conv1",
        "64 × 112 × 112  ·  9,408 params",
    ]
    assert "BasicBlock ×2 layer1.0–1" in lines
    assert "64 × 56 × 56  ·  148k params" in lines
    assert "BasicBlock layer4.1" in lines and "512 × 7 × 7  ·  4.7M params" in lines
    assert lines[-2:] == ["Output", "1000"]
    detail = texts(svg(graphs["resnet18"].details[0], "d", "BasicBlock"))
    assert "add" in detail and "BatchNorm2d downsample.1" in detail
    digits = texts(svg(graphs["digits"].main, "m", "digits"))
    assert "Conv2d features.0" in digits and "16 × 8 × 8  ·  160 params" in digits


def test_every_arrow_is_drawn_and_points_at_a_box(graphs: dict[str, ModelGraph]) -> None:
    detail = graphs["resnet18"].details[0]
    root = ET.fromstring(svg(detail, "d", "BasicBlock"))
    arrows = [p for p in root.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(arrows) == len(detail.edges) == 11
    assert all(p.get("marker-end") == "url(#arrow-d)" for p in arrows)


def test_a_long_skip_arc_stays_inside_the_picture(graphs: dict[str, ModelGraph]) -> None:
    residual = graphs["mobilenet"].details[0]  # input -> add passes 15 boxes
    root = ET.fromstring(svg(residual, "r", "InvertedResidual"))
    _, _, width, height = (float(v) for v in root.get("viewBox", "").split())
    for path in root.iter(f"{SVG}path"):
        if path.get("marker-end"):
            d = path.get("d", "").replace("M", " ").replace("L", " ")
            numbers = [float(v) for v in d.split()]
            xs, ys = numbers[0::2], numbers[1::2]
            assert min(xs) >= 0 and max(xs) <= width and min(ys) >= 0 and max(ys) <= height


@pytest.mark.parametrize("name", ["digits", "mlp", "resnet18", "mobilenet"])
def test_each_diagram_fits_a_page_and_stays_readable(
    graphs: dict[str, ModelGraph], name: str
) -> None:
    for graph in [graphs[name].main, *graphs[name].details]:
        markup = svg(graph, "x", name)
        width, height = size(markup)
        assert width <= MAX_WIDTH and height <= MAX_HEIGHT
        view = [float(v) for v in ET.fromstring(markup).get("viewBox", "").split()]
        assert height / view[3] >= 0.7, (name, graph.title)  # text at least 70 % size


def test_the_same_graph_gives_the_same_bytes_in_another_process(
    graphs: dict[str, ModelGraph], tmp_path: Path
) -> None:
    detail = graphs["mobilenet"].details[0]  # branches: squeeze-excitation and the skip
    (tmp_path / "g.json").write_text(json.dumps(graphs["mobilenet"].to_dict()))
    code = (
        "import json, sys; from auditor.models.graph import ModelGraph; "
        "from auditor.report.diagram import svg; "
        "g = ModelGraph.from_dict(json.load(open(sys.argv[1]))); "
        "sys.stdout.write(svg(g.details[0], 'x', 'IR'))"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "g.json")],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        assert out == svg(detail, "x", "IR")


def test_hostile_module_and_class_names_are_escaped() -> None:
    evil = type("<script>alert(1)</script>", (nn.Module,), {"forward": lambda self, x: x * 2})
    model = nn.Sequential(nn.Linear(3, 3))
    model.add_module("a&b<i>", evil())
    graph = model_graph(model, torch.rand(1, 3))
    markup = svg(graph.main, "e", "<b>label</b>")
    assert "<script>" not in markup and "<i>" not in markup and "<b>" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    lines = texts(markup)  # parses: the names are text
    assert "<script>alert(1)</script> a&b<i>" in lines


def view_of(folder: RunFolder):
    return build_view(ReportSource.open(folder))


def test_model_section_leads_with_the_diagram(digits_run: RunFolder) -> None:
    model = view_of(digits_run).model
    assert model.architecture is not None
    lines = texts(str(model.architecture.model.svg))
    assert "MaxPool2d features.4" in lines and "32 × 4 × 4" in lines
    assert model.architecture.details == [] and model.architecture.note == ""
    assert model.architecture.model.caption == (
        "The model's blocks from input to output, traced with torch.fx: each box gives the "
        "block's type, its name, its output shape for one sample and its parameters."
    )
    html = (digits_run.path / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="model"') : html.index('<section id="data"')]
    assert section.index('<svg xmlns="http://www.w3.org/2000/svg" class="arch-diagram"') < (
        section.index("facts-table")
    )


def test_pdf_has_the_diagram_as_text_on_one_page(digits_run: RunFolder) -> None:
    reader = PdfReader(digits_run.path / "report.pdf")
    pages = [" ".join(p.extract_text().split()) for p in reader.pages]
    (page,) = [t for t in pages if "Conv2d features.0 16 × 8 × 8 · 160 params" in t]
    for label in ("Input x 1 × 8 × 8", "MaxPool2d features.4 32 × 4 × 4", "Output 10"):
        assert label in page
    assert "Linear classifier.3 10 · 650 params" in page


def test_render_redraws_a_stored_graph_and_escapes_its_names(digits_run, copy_of) -> None:
    def hostile(raw: dict) -> None:
        nodes = raw["model"]["graph"]["main"]["nodes"]
        nodes[1]["type"] = "<script>alert(3)</script>"
        nodes[2]["name"] = "<img src=x onerror=alert(4)>"
        nodes[2]["repeat"] = 5

    folder = copy_of(digits_run, hostile)
    render(folder, ["html"])
    html = (folder.path / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<img src=x" not in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert "ReLU ×5" in html and "&lt;img src=x onerror=alert(4)&gt;" in html
    assert "“×n” stands for n identical blocks in a row" in html


def test_a_run_without_a_graph_renders_without_a_diagram(digits_run, copy_of) -> None:
    folder = copy_of(digits_run, lambda raw: raw["model"].pop("graph"))
    assert view_of(folder).model.architecture is None
    render(folder, ["html"])
    assert "arch-diagram" not in (folder.path / "report.html").read_text(encoding="utf-8")
