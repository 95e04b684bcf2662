"""Section 5, Saliency galleries: the chosen samples down, local explainers across.

Images: each cell is the explainer's attribution over the input, on that explainer's one
colour scale for the whole slice (``auditor.report.scales``), never normalized per image.
Tabular data: each cell lists the sample's top signed contributions as bars on the same
per-explainer scale. Which samples are shown is the runner's choice (``report.gallery``:
count, misclassified first, classes taking turns, at most ``per_class`` of a class; see
``auditor.gallery.choose``), stored in gallery.npz.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auditor.report.canvas import Canvas
from auditor.report.colormaps import css_gradient
from auditor.report.common import FigureRef, fmt_num, slug
from auditor.report.overlay import input_picture, overlay_picture, picture_ext
from auditor.report.scales import ColourScale, reduce_channels
from auditor.report.source import ReportSource

TABULAR_TOP = 6  # contributions listed per sample and explainer


@dataclass(frozen=True)
class Column:
    id: str
    type: str
    scale: ColourScale
    range_text: str  # e.g. "−0.42 … 0 … 0.42 (signed)"
    gradient: str  # CSS linear-gradient of the colour map, for the colour bar
    ticks: list[str]


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: str  # the input's value of the feature
    attribution: str
    positive: bool
    width: float  # percent of half the bar track (|a| / scale, clipped)


@dataclass
class Cell:
    explainer: str
    figure: FigureRef | None = None  # images
    anchor: str = ""  # id of the full-size view
    scale_text: str = ""  # the explainer's colour scale, for the full-size caption
    contributions: list[Contribution] = field(default_factory=list)  # tabular


@dataclass
class Row:
    position: int
    index: int
    label: str
    predicted: str
    target: str
    probability: str
    correct: bool
    input_figure: FigureRef | None
    cells: list[Cell]


@dataclass
class GallerySection:
    modality: str
    requested: str
    columns: list[Column]
    rows: list[Row]
    note: str


def _column(src: ReportSource, e_id: str, scale: ColourScale, e_type: str) -> Column:
    s = fmt_num(scale.scale, 3)
    if scale.signed:
        text, ticks = f"−{s} … 0 … {s} (signed)", [f"−{s}", "0", s]
    else:
        text, ticks = f"0 … {s} (magnitude)", ["0", "", s]
    return Column(e_id, e_type, scale, text, css_gradient(scale.signed), ticks)


def _requested(src: ReportSource) -> str:
    g = src.options.gallery
    parts = [f"up to {g.samples} samples", "classes taking turns"]
    if g.per_class:
        parts.append(f"at most {g.per_class} per class")
    if g.misclassified_first:
        parts.append("misclassified first")
    return ", ".join(parts)


def _contributions(
    src: ReportSource, attribution: np.ndarray, sample: np.ndarray, scale: ColourScale
) -> list[Contribution]:
    a = attribution.ravel().astype(np.float64)
    x = sample.ravel()
    names = src.results.data.feature_names or [f"x{i}" for i in range(a.size)]
    order = np.argsort(-np.abs(np.nan_to_num(a)), kind="stable")[:TABULAR_TOP]
    return [
        Contribution(
            feature=names[i] if i < len(names) else f"x{i}",
            value=fmt_num(float(x[i]), 3),
            attribution=fmt_num(float(a[i]), 3),
            positive=bool(a[i] >= 0),
            width=round(min(abs(float(a[i])) / scale.scale, 1.0) * 100, 1),
        )
        for i in order
    ]


def build(src: ReportSource) -> GallerySection:
    g = src.gallery
    locals_ = [e for e in src.ok("local") if src.attributions(e) is not None]
    scales = {e.id: src.scale(e) for e in locals_}
    columns = [_column(src, e.id, s, e.type) for e in locals_ if (s := scales[e.id]) is not None]
    image = src.modality == "image"
    ext = picture_ext(src.results.data.input_shape)
    rows = []
    for i in range(len(g)):
        pos = int(g.positions[i])
        cells = []
        for col in columns:
            if image:
                name = f"gallery/{pos}-{slug(col.id)}.{ext}"
                cells.append(
                    Cell(
                        col.id,
                        FigureRef(name, f"{col.id} attribution of sample {pos}"),
                        anchor=f"full-{pos}-{slug(col.id)}",
                        scale_text=col.range_text,
                    )
                )
            else:
                result = src.results.explainers[col.id]
                attr = np.asarray(src.attributions(result)[pos])  # type: ignore[index]
                cells.append(
                    Cell(col.id, contributions=_contributions(src, attr, g.shown[i], col.scale))
                )
        rows.append(
            Row(
                position=pos,
                index=int(g.indices[i]),
                label=src.class_name(int(g.labels[i])),
                predicted=src.class_name(int(g.predicted[i])),
                target=src.class_name(int(g.targets[i])),
                probability=f"{float(g.probability[i]):.3f}",
                correct=bool(g.labels[i] == g.predicted[i]),
                input_figure=FigureRef(f"inputs/{pos}.{ext}", f"Input sample {pos}")
                if image
                else None,
                cells=cells,
            )
        )
    wrong = sum(1 for r in rows if not r.correct)
    note = (
        f"{len(rows)} samples ({wrong} misclassified), {len(columns)} local explainers. "
        "Each explainer has one colour scale for the whole slice: the 99th percentile of "
        "|attribution| (larger values saturate), so pictures of one explainer compare directly."
    )
    if not columns:
        note = "No local explainer finished, so there are no per-sample attributions to show."
    elif not rows:
        note = "The spec asked for no gallery samples (report.gallery.samples: 0)."
    return GallerySection(src.modality, _requested(src), columns, rows, note)


def draw(view: GallerySection, src: ReportSource, canvas: Canvas) -> None:
    if view.modality != "image" or not view.rows:
        return
    g = src.gallery
    positions = [r.position for r in view.rows]
    for row_i, row in enumerate(view.rows):
        if row.input_figure and row.input_figure.name not in canvas.images:
            canvas.array(row.input_figure.name, input_picture(g.inputs[row_i]), display_width=96)
    for col in view.columns:
        memmap = src.attributions(src.results.explainers[col.id])
        if memmap is None:
            continue
        # one sorted read of the rows the gallery needs (memmaps like ordered access)
        order = np.argsort(positions)
        block = np.empty((len(positions), *memmap.shape[1:]), dtype=np.float32)
        block[order] = memmap[np.asarray(positions)[order]]
        maps = reduce_channels(block.astype(np.float64), "image")
        for row_i, row in enumerate(view.rows):
            cell = next(c for c in row.cells if c.explainer == col.id)
            if cell.figure is None:
                continue
            picture = overlay_picture(
                g.inputs[row_i], maps[row_i], col.scale.scale, signed=col.scale.signed
            )
            canvas.array(cell.figure.name, picture, display_width=96)
