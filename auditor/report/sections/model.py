"""Section: Model: architecture diagram, architecture table, parameter counts, weight
histograms, weights hash.

The diagram (``auditor.report.diagram``) is drawn from the block graph results.json keeps
under ``model.graph``: one figure of the whole model, then one per common block type.

The architecture table aims at one page (``auditor.models.info.layer_table``): a model
with many modules shows identical consecutive blocks as one row and folds deep modules into
their parent; results.json keeps every module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from auditor.models.graph_model import ModelGraph
from auditor.models.info import LayerInfo, layer_table
from auditor.report import diagram, figures
from auditor.report.canvas import Canvas
from auditor.report.common import FigureRef, fmt_num, fmt_shape
from auditor.report.sections.base import Section
from auditor.report.source import ReportSource

PANELS_PER_FIGURE = 12  # weight histograms per figure: one figure fits a page
MAX_HISTOGRAMS = 24  # two pages; a mobilenet's 54 tensors took five


def _spread(items: list, most: int) -> list:
    """At most ``most`` of ``items``, evenly spaced, the first and the last included."""
    if len(items) <= most:
        return items
    picks = sorted({round(i * (len(items) - 1) / (most - 1)) for i in range(most)})
    return [items[i] for i in picks]


@dataclass(frozen=True)
class LayerRow:
    name: str  # "layer1.0–1" for identical consecutive blocks shown as one row
    depth: int  # nesting level
    type: str  # "BasicBlock ×2" for merged blocks
    output_shape: str
    params: str
    own_params: int  # parameters counted on this row (its own and its folded modules')
    container: bool  # a module that only groups others shown below it (no parameters)
    folded: int = 0  # modules inside this row without a row of their own


@dataclass(frozen=True)
class Histogram:
    name: str
    edges: list[float]
    counts: list[int]
    mean: float
    std: float


@dataclass(frozen=True)
class Diagram:
    """An inline SVG figure (our own markup: every name in it is escaped by ``diagram``)."""

    svg: Markup
    caption: str


@dataclass(frozen=True)
class Architecture:
    """The architecture diagram of the whole model and the inside of its block types."""

    model: Diagram
    details: list[Diagram]
    note: str  # how it was drawn when torch.fx could not trace the model, else ""


@dataclass(frozen=True)
class ModelSection:
    class_name: str
    total_params: str
    weights_sha256: str
    output_shape: str
    facts: list[tuple[str, str]]
    layers: list[LayerRow]
    layers_note: str  # what the table leaves out, "" when it lists every module
    notes: list[str]
    histograms: list[Histogram]
    histogram_figures: list[FigureRef]
    architecture: Architecture | None = None  # None: results.json has no block graph


def _layer_infos(raw: list[dict[str, Any]]) -> list[LayerInfo]:
    return [
        LayerInfo(
            name=str(layer.get("name", "")),
            type=str(layer.get("type", "")),
            output_shape=layer.get("output_shape"),
            params=int(layer.get("params") or 0),
        )
        for layer in raw
    ]


def _layers(raw: list[dict[str, Any]]) -> tuple[list[LayerRow], str]:
    """The architecture table's rows and a note on what it folds (about one page)."""
    table = layer_table(_layer_infos(raw))
    rows = [
        LayerRow(
            name=r.name,
            depth=r.depth,
            type=f"{r.type} ×{r.repeat}" if r.repeat > 1 else r.type,
            output_shape=fmt_shape(r.output_shape),
            params=fmt_num(r.params) if r.params else "",
            own_params=r.params,
            container=r.expanded and r.params == 0,
            folded=r.folded,
        )
        for r in table.rows
    ]
    if table.depth is None:
        return rows, ""
    note = (
        f"{len(rows)} rows for the model's {table.modules:,} modules: identical consecutive "
        "blocks share a row (×n), and a row marked “+n” holds n modules inside it (its "
        "parameters include theirs). results.json lists every module."
    )
    if table.omitted:
        note += f" {table.omitted} more rows at the end are not shown."
    return rows, note


def _architecture(raw: Any) -> Architecture | None:
    graph = ModelGraph.from_dict(raw)
    if graph is None:
        return None
    traced = graph.source == "torch.fx"
    repeated = any(n.repeat > 1 for n in graph.main.nodes)
    joins = any(
        n.kind == "function" and len(g.inputs_of(n.id)) > 1
        for g in (graph.main, *graph.details)
        for n in g.nodes
    )
    caption = (
        "The model's blocks from input to output"
        + (", traced with torch.fx" if traced else ", from its module tree")
        + ": each box gives the block's type, its name, its output shape for one sample and "
        "its parameters."
        + (
            " “×n” stands for n identical blocks in a row (parameters of all n)."
            if repeated
            else ""
        )
        + (
            " Arrows that meet at an add or cat are skip connections or concatenations."
            if joins
            else ""
        )
        + (" The figures below show the inside of each block type." if graph.details else "")
    )
    details = []
    for i, d in enumerate(graph.details):
        caption_d = f"Inside a {d.title}, drawn for {d.example}" + (
            f", one of the model's {d.instances} blocks of this type (the others may differ "
            "in sizes or in their skip path)."
            if d.instances > 1
            else "."
        )
        details.append(
            Diagram(Markup(diagram.svg(d, f"block-{i}", f"Inside {d.title}")), caption_d)
        )
    return Architecture(
        model=Diagram(Markup(diagram.svg(graph.main, "model", "Architecture diagram")), caption),
        details=details,
        note=graph.note,
    )


def _modules(n: int) -> str:
    return f"{n:,} module" + ("" if n == 1 else "s")


def build(src: ReportSource) -> ModelSection:
    m = src.results.model
    sha = m.get("weights_sha256") or src.results.provenance.weights_sha256
    raw_hist = m.get("weight_histograms") or {}
    histograms = [
        Histogram(name, list(h["edges"]), list(h["counts"]), float(h["mean"]), float(h["std"]))
        for name, h in raw_hist.items()
        if len(h.get("edges", [])) == len(h.get("counts", [])) + 1
    ]
    recorded = len(histograms)
    histograms = _spread(histograms, MAX_HISTOGRAMS)
    which = (
        f"{len(histograms)} of the {recorded} weight tensors, evenly spaced through the "
        "network (results.json has all)"
        if len(histograms) < recorded
        else None
    )
    figures_ = []
    for start in range(0, len(histograms), PANELS_PER_FIGURE):
        part = histograms[start : start + PANELS_PER_FIGURE]
        shown = which or f"tensors {start + 1}–{start + len(part)} of {recorded}"
        figures_.append(
            FigureRef(
                name=f"model/weights-{start // PANELS_PER_FIGURE + 1}.png",
                alt=f"Histograms of the weights of {', '.join(h.name for h in part)}",
                caption=f"Weight distributions of {shown}; biases and norms left out (μ mean, "
                "σ standard deviation).",
            )
        )
    total = m.get("total_params")
    raw_layers = m.get("layers") or []
    layers, layers_note = _layers(raw_layers)
    parents = {str(layer.get("name", "")).rpartition(".")[0] for layer in raw_layers}
    containers = sum(
        1 for layer in raw_layers if layer.get("name") in parents and not layer.get("params")
    )
    facts = [
        ("Class", str(m.get("class_name", "unknown"))),
        ("Parameters", fmt_num(total) if isinstance(total, int) else "—"),
        ("Layers", _modules(len(raw_layers) - containers)),
        ("Input shape", " × ".join(str(d) for d in src.results.data.input_shape)),
        ("Output shape", fmt_shape(m.get("output_shape"))),
        ("Weights sha256", sha or "none (the model's own initialisation)"),
    ]
    return ModelSection(
        class_name=str(m.get("class_name", "unknown")),
        total_params=fmt_num(total) if isinstance(total, int) else "—",
        weights_sha256=sha or "none",
        output_shape=fmt_shape(m.get("output_shape")),
        facts=facts,
        layers=layers,
        layers_note=layers_note,
        notes=[str(n) for n in m.get("notes") or []],
        histograms=histograms,
        histogram_figures=figures_,
        architecture=_architecture(m.get("graph")),
    )


def draw(view: ModelSection, src: ReportSource, canvas: Canvas) -> None:
    for i, ref in enumerate(view.histogram_figures):
        part = view.histograms[i * PANELS_PER_FIGURE : (i + 1) * PANELS_PER_FIGURE]
        panels = [(h.name, h.edges, h.counts, h.mean, h.std) for h in part]
        canvas.figure(ref.name, figures.histograms(panels))


SECTION = Section("model", "Model", build, draw)
