"""Section: Saliency galleries: the chosen samples down, local explainers across.

Images: each cell is the explainer's attribution over the input, on that explainer's one
colour scale for the whole slice (``auditor.report.scales``), never normalized per image.
Tabular data: each cell lists the sample's top signed contributions as bars on the same
per-explainer scale. Text: each sample's words, one line per explainer, coloured by the
summed attribution of their word pieces on the explainer's scale (inline spans with
background colours, so the PDF shows them too), each piece's value in the word's tooltip
and in a small table. Which samples are shown is the runner's choice (``report.gallery``:
count, misclassified first, classes taking turns, at most ``per_class`` of a class; see
``auditor.gallery.choose``), stored in gallery.npz.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auditor.report.canvas import Canvas
from auditor.report.colormaps import css_gradient, is_dark, to_hex
from auditor.report.common import FigureRef, fmt_num, slug
from auditor.report.modalities import GalleryKind
from auditor.report.overlay import input_picture, overlay_picture, picture_ext
from auditor.report.scales import ColourScale, reduce_channels
from auditor.report.sections.base import Section, count_badge
from auditor.report.source import ReportSource

TABULAR_TOP = 6  # contributions listed per sample and explainer
TEXT_PIECES = 8  # token pieces in a text sample's table (the largest on any explainer)
TEXT_REST = 300  # characters of a truncated text's unseen rest that are shown


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


@dataclass(frozen=True)
class TextWord:
    """A word of a text sample as drawn: its text, the original gap before it, its colour
    and the tooltip with the value of each of its pieces."""

    text: str
    before: str
    value: float
    background: str  # "#rrggbb" on the explainer's scale
    dark: bool  # white text on it
    title: str  # "piece +0.12 · ##s −0.01"


@dataclass(frozen=True)
class PieceRow:
    """A token piece of a text sample with its attribution per explainer (table)."""

    position: int
    piece: str
    values: list[str]


@dataclass
class Cell:
    explainer: str
    figure: FigureRef | None = None  # images
    anchor: str = ""  # id of the full-size view
    scale_text: str = ""  # the explainer's colour scale, for the full-size caption
    contributions: list[Contribution] = field(default_factory=list)  # tabular
    words: list[TextWord] = field(default_factory=list)  # text


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
    truncated: bool = False  # text cut at the model's max_length
    rest: str = ""  # the unseen rest of a truncated text (shortened)
    pieces: list[PieceRow] = field(default_factory=list)  # text


@dataclass
class GallerySection:
    modality: str
    kind: GalleryKind  # pictures, bars or text (``auditor.report.modalities``)
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
            value=src.view.value_text(src, int(i), float(x[i])),
            attribution=fmt_num(float(a[i]), 3),
            positive=bool(a[i] >= 0),
            width=round(min(abs(float(a[i])) / scale.scale, 1.0) * 100, 1),
        )
        for i in order
    ]


def _text_cells(
    src: ReportSource, columns: list[Column], row: int
) -> tuple[list[Cell], list[PieceRow]]:
    """One highlighted line per explainer for sample ``row`` of the slice, and the table of
    its largest pieces (mean |attribution| relative to each explainer's scale) in text order."""
    tokens = src.tokens
    if tokens is None:
        return [Cell(col.id) for col in columns], []
    values = []
    for col in columns:
        memmap = src.attributions(src.results.explainers[col.id])
        values.append(np.asarray(memmap[row], dtype=np.float64))  # type: ignore[index]
    cells = []
    for col, v in zip(columns, values, strict=True):
        words = []
        for w in tokens.words(row, v):
            colour = to_hex(w.value, col.scale.scale, signed=col.scale.signed)
            words.append(
                TextWord(
                    text=w.text,
                    before=w.before,
                    value=w.value,
                    background=colour,
                    dark=is_dark(colour),
                    title=" · ".join(f"{p.text} {_signed(p.value)}" for p in w.pieces),
                )
            )
        cells.append(Cell(col.id, words=words))
    real = np.flatnonzero(tokens.real[row])
    if not len(values) or not len(real):
        return cells, []
    # the mean over explainers of |a| / scale: an explainer that gives every piece the same
    # value (saliency of a mean-pooling model) does not push the others' top pieces out
    relative = np.mean(
        [np.abs(v[real]) / col.scale.scale for v, col in zip(values, columns, strict=True)], axis=0
    )
    chosen = np.sort(real[np.argsort(-relative, kind="stable")[:TEXT_PIECES]])
    pieces = [
        PieceRow(int(p), str(tokens.pieces[row, p]), [_signed(float(v[p])) for v in values])
        for p in chosen
    ]
    return cells, pieces


def _signed(value: float) -> str:
    text = fmt_num(abs(value), 3)
    return ("−" if value < 0 else "+") + text


def _rest(src: ReportSource, row: int) -> tuple[bool, str]:
    tokens = src.tokens
    if tokens is None:
        return False, ""
    rest = tokens.rest(row)
    return bool(tokens.truncated[row]), rest[:TEXT_REST] + ("…" if len(rest) > TEXT_REST else "")


def build(src: ReportSource) -> GallerySection:
    g = src.gallery
    locals_ = [e for e in src.ok("local") if src.attributions(e) is not None]
    scales = {e.id: src.scale(e) for e in locals_}
    columns = [_column(src, e.id, s, e.type) for e in locals_ if (s := scales[e.id]) is not None]
    kind = src.view.gallery
    image = kind == "pictures"
    ext = picture_ext(src.results.data.input_shape)
    rows = []
    for i in range(len(g)):
        pos = int(g.positions[i])
        cells: list[Cell] = []
        pieces: list[PieceRow] = []
        truncated, rest = _rest(src, pos) if kind == "text" else (False, "")
        if kind == "text":
            cells, pieces = _text_cells(src, columns, pos)
        for col in columns if kind != "text" else []:
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
                truncated=truncated,
                rest=rest,
                pieces=pieces,
            )
        )
    wrong = sum(1 for r in rows if not r.correct)
    note = (
        f"{len(rows)} samples ({wrong} misclassified), {len(columns)} local explainers. "
        "Each explainer has one colour scale for the whole slice: the 99th percentile of "
        "|attribution| (larger values saturate), so pictures of one explainer compare directly."
        + src.view.gallery_note
    )
    if not columns:
        note = "No local explainer finished, so there are no per-sample attributions to show."
    elif not rows:
        note = "The spec asked for no gallery samples (report.gallery.samples: 0)."
    if kind == "text" and rows and src.tokens is None:
        note = "The run folder has no tokens.npz, so the texts cannot be shown."
    return GallerySection(src.modality, kind, _requested(src), columns, rows, note)


def draw(view: GallerySection, src: ReportSource, canvas: Canvas) -> None:
    if view.kind != "pictures" or not view.rows:
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


SECTION = Section("gallery", "Saliency galleries", build, draw, count_badge(lambda g: g.rows))
