"""Section 2, Model: architecture table, parameter counts, weight histograms, weights hash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditor.report import figures
from auditor.report.canvas import Canvas
from auditor.report.common import FigureRef, fmt_num, fmt_shape
from auditor.report.source import ReportSource

PANELS_PER_FIGURE = 12  # weight histograms per figure: one figure fits a page


@dataclass(frozen=True)
class LayerRow:
    name: str
    depth: int  # nesting level, from the dotted name
    type: str
    output_shape: str
    params: str
    own_params: int
    container: bool  # a module that only groups others (no parameters of its own, children)


@dataclass(frozen=True)
class Histogram:
    name: str
    edges: list[float]
    counts: list[int]
    mean: float
    std: float


@dataclass(frozen=True)
class ModelSection:
    class_name: str
    total_params: str
    weights_sha256: str
    output_shape: str
    facts: list[tuple[str, str]]
    layers: list[LayerRow]
    notes: list[str]
    histograms: list[Histogram]
    histogram_figures: list[FigureRef]


def _layers(raw: list[dict[str, Any]]) -> list[LayerRow]:
    names = [str(layer.get("name", "")) for layer in raw]
    rows = []
    for layer, name in zip(raw, names, strict=True):
        has_children = any(other.startswith(name + ".") for other in names)
        own = int(layer.get("params") or 0)
        rows.append(
            LayerRow(
                name=name,
                depth=name.count("."),
                type=str(layer.get("type", "")),
                output_shape=fmt_shape(layer.get("output_shape")),
                params=fmt_num(own) if own else "",
                own_params=own,
                container=has_children and own == 0,
            )
        )
    return rows


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
    figures_ = []
    for start in range(0, len(histograms), PANELS_PER_FIGURE):
        part = histograms[start : start + PANELS_PER_FIGURE]
        figures_.append(
            FigureRef(
                name=f"model/weights-{start // PANELS_PER_FIGURE + 1}.png",
                alt=f"Histograms of the weights of {', '.join(h.name for h in part)}",
                caption=f"Weight distributions, tensors {start + 1}–{start + len(part)} of "
                f"{len(histograms)} (biases and norms left out; μ mean, σ standard deviation).",
            )
        )
    total = m.get("total_params")
    layers = _layers(m.get("layers") or [])
    facts = [
        ("Class", str(m.get("class_name", "unknown"))),
        ("Parameters", fmt_num(total) if isinstance(total, int) else "—"),
        ("Layers", _modules(sum(1 for r in layers if not r.container))),
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
        notes=[str(n) for n in m.get("notes") or []],
        histograms=histograms,
        histogram_figures=figures_,
    )


def draw(view: ModelSection, src: ReportSource, canvas: Canvas) -> None:
    for i, ref in enumerate(view.histogram_figures):
        part = view.histograms[i * PANELS_PER_FIGURE : (i + 1) * PANELS_PER_FIGURE]
        panels = [(h.name, h.edges, h.counts, h.mean, h.std) for h in part]
        canvas.figure(ref.name, figures.histograms(panels))
