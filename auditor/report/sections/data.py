"""Section: Data slice: selection, class distribution, confusion matrix, samples or features."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from auditor.report import figures
from auditor.report.canvas import Canvas
from auditor.report.common import Bar, FigureRef, bars, fmt_num
from auditor.report.overlay import input_picture, picture_ext
from auditor.report.sections.base import Section
from auditor.report.source import ReportSource

MAX_CLASSES_SHOWN = 30  # classes in charts and the confusion matrix (the most frequent)
THUMBNAILS = 16
MAX_FEATURE_ROWS = 60  # rows of the tabular feature summary
TEXTS = 8  # sample texts listed (text runs)
TEXT_CHARS = 240  # characters of each


@dataclass(frozen=True)
class ClassRow:
    name: str
    count: int
    share: str
    accuracy: str
    bar: Bar  # the count, drawn in HTML beside the table's numbers


@dataclass(frozen=True)
class Thumbnail:
    figure: FigureRef
    caption: str
    position: int


@dataclass(frozen=True)
class FeatureRow:
    name: str
    mean: str
    std: str
    min: str
    max: str


@dataclass(frozen=True)
class DataSection:
    facts: list[tuple[str, str]]
    selection: str
    classes: list[ClassRow]
    classes_note: str
    confusion_figure: FigureRef | None
    confusion_classes: list[int]  # class numbers in the confusion figure
    thumbnails: list[Thumbnail]
    features: list[FeatureRow]
    features_note: str
    texts: list[tuple[str, str]] = field(default_factory=list)  # text: (caption, text)


def describe_slice(text: str, n: int) -> str:
    """The stored slice (JSON of ``data.slice``) as a sentence."""
    try:
        s: dict[str, Any] = json.loads(text)
    except (TypeError, ValueError):
        return f"{text}: {n:,} samples"
    if not isinstance(s, dict):
        return f"{text}: {n:,} samples"
    parts = []
    if s.get("classes"):
        parts.append("only classes " + ", ".join(str(c) for c in s["classes"]))
    if s.get("indices"):
        parts.append(f"{len(s['indices']):,} listed indices")
    if s.get("sample"):
        parts.append(f"a random sample of {s['sample']:,} (seed {s.get('seed', 0)})")
    if s.get("start") is not None or s.get("stop") is not None:
        start = s.get("start") or 0
        stop = s.get("stop")
        parts.append(f"positions {start} to {stop - 1}" if stop else f"positions from {start}")
    return ("; ".join(parts) or "all samples") + f": {n:,} samples"


def _feature_rows(src: ReportSource) -> tuple[list[FeatureRow], str]:
    """Per-feature summary: the runner's slice summary when stored, else the gallery samples.

    Values are in the data's own units where the source standardized them (a CSV with
    ``standardize``), so that a reader sees ages in years rather than z-scores.
    """
    stored = src.raw.get("data", {}).get("feature_summary")
    names = src.results.data.feature_names or []
    if isinstance(stored, list) and stored:
        rows = [
            FeatureRow(
                str(f.get("name", "")),
                fmt_num(f.get("mean")),
                fmt_num(f.get("std")),
                fmt_num(f.get("min")),
                fmt_num(f.get("max")),
            )
            for f in stored
        ]
        own = all(isinstance(f, dict) and f.get("units") == "data" for f in stored)
        return rows, f"over the {src.results.data.n:,} samples of the slice{_units(src, own)}"
    g = src.gallery
    if len(g) == 0:
        return [], "no samples were stored with the run"
    table = g.shown.reshape(len(g), -1).astype(np.float64)
    names = names if len(names) == table.shape[1] else [f"x{i}" for i in range(table.shape[1])]
    rows = [
        FeatureRow(
            name,
            fmt_num(float(col.mean())),
            fmt_num(float(col.std())),
            fmt_num(float(col.min())),
            fmt_num(float(col.max())),
        )
        for name, col in zip(names, table.T, strict=True)
    ]
    note = (
        f"over the {len(g)} gallery samples stored with the run (the run folder does not "
        f"keep a summary of the whole slice){_units(src, g.values is not None)}"
    )
    return rows, note


def _units(src: ReportSource, own: bool) -> str:
    """The note's words on units: the data's own (un-standardized) or as fed to the model."""
    if not own:
        return "; values as fed to the model"
    data = "the CSV's" if src.results.data.source == "csv" else "the data's"
    return f"; values in {data} own units (before standardization)"


def build(src: ReportSource) -> DataSection:
    d, p = src.results.data, src.results.predictions
    counts = d.class_counts
    total = max(sum(counts.values()), 1)
    order = sorted(range(len(d.class_names)), key=lambda k: -counts.get(d.class_names[k], 0))
    shown = sorted(order[:MAX_CLASSES_SHOWN])
    shown_counts = [counts.get(d.class_names[k], 0) for k in shown]
    count_bars = bars([float(c) for c in shown_counts])
    classes = [
        ClassRow(
            name=d.class_names[k],
            count=count,
            share=f"{count / total:.1%}",
            accuracy=fmt_num(p.per_class_accuracy.get(d.class_names[k]), 3),
            bar=bar,
        )
        for k, count, bar in zip(shown, shown_counts, count_bars, strict=True)
    ]
    hidden = len(d.class_names) - len(shown)
    classes_note = (
        f"The {len(shown)} most frequent of {len(d.class_names)} classes are shown."
        if hidden
        else ""
    )
    facts = [
        ("Source", d.source),
        ("Description", d.description),
        ("Modality", d.modality),
        ("Input shape", " × ".join(str(x) for x in d.input_shape)),
        ("Samples", f"{d.n:,}"),
        ("Batch size", str(d.batch_size)),
        (
            "Explained class",
            {"predicted": "the predicted class", "label": "the true label"}.get(
                p.targets, f"class {p.targets}"
            ),
        ),
    ]
    thumbnails = []
    if src.view.pictures:
        g = src.gallery
        ext = picture_ext(d.input_shape)
        for i in range(min(THUMBNAILS, len(g))):
            pos = int(g.positions[i])
            thumbnails.append(
                Thumbnail(
                    figure=FigureRef(f"inputs/{pos}.{ext}", f"Input sample {pos}"),
                    caption=f"#{pos} · {src.class_name(int(g.labels[i]))}",
                    position=pos,
                )
            )
    features, features_note = _feature_rows(src) if src.view.feature_table else ([], "")
    if len(features) > MAX_FEATURE_ROWS:
        features_note += f"; the first {MAX_FEATURE_ROWS} of {len(features)} features are listed"
        features = features[:MAX_FEATURE_ROWS]
    return DataSection(
        facts=facts,
        selection=describe_slice(d.slice, d.n),
        classes=classes,
        classes_note=classes_note,
        confusion_figure=FigureRef(
            "data/confusion.png",
            "Confusion matrix of the model on the slice",
            "Rows: true label; columns: predicted class. Cells count samples; the colour is "
            "the share of the row (recall), so the diagonal is dark when the model is right.",
        )
        if classes and p.confusion
        else None,
        confusion_classes=shown,
        thumbnails=thumbnails,
        features=features,
        features_note=features_note,
        texts=_texts(src),
    )


def _texts(src: ReportSource) -> list[tuple[str, str]]:
    """Text runs: the first gallery samples' texts (shortened) with their true labels."""
    tokens, g = src.tokens, src.gallery
    if tokens is None:
        return []
    out = []
    for i in range(min(TEXTS, len(g))):
        pos = int(g.positions[i])
        text = str(tokens.texts[pos])
        short = text[:TEXT_CHARS] + ("…" if len(text) > TEXT_CHARS else "")
        more = f" · {int(tokens.lengths[pos])} tokens" + (
            ", truncated" if bool(tokens.truncated[pos]) else ""
        )
        out.append((f"#{pos} · {src.class_name(int(g.labels[i]))}{more}", short))
    return out


def draw(view: DataSection, src: ReportSource, canvas: Canvas) -> None:
    if view.confusion_figure:
        full = np.asarray(src.results.predictions.confusion, dtype=np.float64)
        k = view.confusion_classes
        matrix = full[np.ix_(k, k)]
        rows = np.maximum(full[k].sum(axis=1, keepdims=True), 1)
        names = [src.class_name(i) for i in k]
        annotations = [[str(int(v)) if v else "·" for v in row] for row in matrix]
        fig = figures.heatmap(
            matrix,
            names,
            names,
            xlabel="predicted",
            ylabel="true label",
            signed=False,
            annotations=annotations,
            colour_values=matrix / rows,
        )
        canvas.figure(view.confusion_figure.name, fig)
    g = src.gallery
    for t in view.thumbnails:
        if t.figure.name not in canvas.images:
            i = int(np.flatnonzero(g.positions == t.position)[0])
            canvas.array(t.figure.name, input_picture(g.inputs[i]), display_width=96)


SECTION = Section("data", "Data slice", build, draw)
