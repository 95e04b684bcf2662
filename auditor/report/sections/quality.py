"""Section: Explanation quality: every metric's mean, spread and interval with the
direction that is better, deletion/insertion curves, and cross-explainer matrices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from auditor.report import figures
from auditor.report.canvas import Canvas
from auditor.report.common import STATUS_CLASS, FigureRef, fmt_num, slug
from auditor.report.sections.base import Section, count_badge
from auditor.report.source import ReportSource

ARROWS = {"higher": "↑", "lower": "↓"}


@dataclass(frozen=True)
class MetricRow:
    owner: str  # explainer id, or "model"
    metric: str
    status: str
    status_class: str
    direction: str  # "higher is better" | "lower is better" | ""
    arrow: str
    mean: str
    std: str
    ci95: str
    n: str
    values: str  # other named values, "gain = 0.31, auc = 0.12"
    note: str


@dataclass
class CurveFigure:
    metric: str
    figure: FigureRef
    series: list[tuple[str, np.ndarray, np.ndarray, bool]] = field(repr=False)
    xlabel: str = "step"
    ylabel: str = "value"
    ticks: list[str] | None = None


@dataclass(frozen=True)
class MatrixTable:
    metric: str
    labels: list[str]
    rows: list[list[str]]
    note: str


@dataclass(frozen=True)
class MetricGroup:
    """One metric: its better direction, a row per explainer, the note once if shared."""

    metric: str
    arrow: str
    direction: str
    rows: list[MetricRow]
    note: str  # shared by every row ("" when the rows' notes differ: then shown per row)


@dataclass(frozen=True)
class Overview:
    """Explainers down, metrics across: each cell the mean and its 95% interval."""

    metrics: list[tuple[str, str, str]]  # (metric, arrow, direction)
    rows: list[tuple[str, list[tuple[str, str, str]]]]  # owner, cells (mean, ci, status class)


@dataclass
class QualitySection:
    rows: list[MetricRow]
    overview: Overview | None
    groups: list[MetricGroup]
    curves: list[CurveFigure]
    matrices: list[MatrixTable]
    note: str


def _groups(rows: list[MetricRow]) -> list[MetricGroup]:
    order: dict[str, list[MetricRow]] = {}
    for r in rows:
        order.setdefault(r.metric, []).append(r)
    groups = []
    for metric, members in order.items():
        notes = {r.note for r in members if r.note}
        first = next((r for r in members if r.arrow), members[0])
        groups.append(
            MetricGroup(
                metric,
                first.arrow,
                first.direction,
                members,
                notes.pop() if len(notes) == 1 else "",
            )
        )
    return groups


def _overview(rows: list[MetricRow], owners: list[str]) -> Overview | None:
    local = [r for r in rows if r.owner in owners]
    metrics: dict[str, tuple[str, str, str]] = {}
    for r in local:
        if r.metric not in metrics or (r.arrow and not metrics[r.metric][1]):
            metrics[r.metric] = (r.metric, r.arrow, r.direction)
    if not metrics:
        return None
    cells = {(r.owner, r.metric): r for r in local}
    table = []
    for owner in owners:
        if not any((owner, m) in cells for m in metrics):
            continue
        row = []
        for m in metrics:
            r = cells.get((owner, m))
            if r is None:
                row.append(("", "", "muted"))
            elif r.status != "ok":
                row.append((r.status, "", r.status_class))
            else:
                row.append((r.mean, r.ci95 if r.ci95 != "—" else "", ""))
        table.append((owner, row))
    return Overview(list(metrics.values()), table)


def _row(owner: str, metric: str, record: dict[str, Any]) -> MetricRow:
    status = str(record.get("status", "ok"))
    direction = str(record.get("direction", ""))
    ci = record.get("ci95")
    values = record.get("values") or {}
    named = [(k, v) for k, v in values.items() if k != "mean" and not k.startswith("per_class")]
    shown = ", ".join(f"{k} = {fmt_num(v)}" for k, v in named[:6])
    if len(named) > 6:
        shown += f", … ({len(named) - 6} more in results.json)"
    mean = record.get("mean", values.get("mean", values.get("value")))
    return MetricRow(
        owner=owner,
        metric=metric,
        status=status,
        status_class=STATUS_CLASS.get(status, "muted"),
        direction=f"{direction} is better" if direction in ARROWS else "",
        arrow=ARROWS.get(direction, ""),
        mean=fmt_num(mean),
        std=fmt_num(record.get("std")),
        ci95=f"[{fmt_num(ci[0])}, {fmt_num(ci[1])}]"
        if isinstance(ci, list | tuple) and len(ci) == 2
        else "—",
        n=fmt_num(record.get("n")),
        values=shown,
        note=str(record.get("note") or record.get("error") or ""),
    )


def _numbers(value: Any) -> np.ndarray | None:
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        return np.asarray(value, dtype=np.float64)
    return None


X_KEYS = ("x", "fraction", "fractions", "steps", "step")
MAIN_NAMES = ("explainer", "attribution", "ranked", "y", "curve")


@dataclass
class Lines:
    """A metric's curves: named (x, y, dashed) lines and, for steps, their tick labels."""

    series: list[tuple[str, np.ndarray, np.ndarray, bool]]
    ticks: list[str] | None = None


def curve_series(curves: dict[str, Any]) -> Lines:
    """Named lines from a metric's ``curves``, in any of the usual layouts: a shared x
    (``fraction``) beside y lists, ``{name: {"x": [...], "y": [...]}}``, plain y lists, or
    y lists beside a list of step names (``layers``), which label the x axis. Lines named
    "random..." are the baseline (dashed)."""
    shared = next(
        (_numbers(curves[k]) for k in X_KEYS if _numbers(curves.get(k)) is not None), None
    )
    ticks = next(
        (
            v
            for k, v in curves.items()
            if isinstance(v, list) and v and all(isinstance(t, str) for t in v)
        ),
        None,
    )
    out = []
    for name, value in curves.items():
        if name in X_KEYS:
            continue
        x = y = None
        if isinstance(value, dict):
            y = _numbers(value.get("y", value.get("mean")))
            x = _numbers(value.get("x"))
        else:
            y = _numbers(value)
        if y is None:
            continue
        if x is None or x.size != y.size:
            if shared is not None and shared.size == y.size:
                x = shared
            elif ticks is not None and len(ticks) == y.size:
                x = np.arange(y.size, dtype=np.float64)
            else:
                x = np.linspace(0, 1, y.size)
        out.append((name, x, y, "random" in name.lower()))
    usable_ticks = (
        [str(t) for t in ticks]
        if ticks and any(len(ticks) == y.size for _, _, y, _ in out)
        else None
    )
    return Lines(out, usable_ticks)


def _matrices(metric: str, record: dict[str, Any]) -> list[MatrixTable]:
    """Every square matrix a cross metric stored (e.g. Kendall tau and top-k overlap)."""
    m = record.get("matrix")
    if not isinstance(m, dict):
        return []
    labels = [str(x) for x in m.get("labels", [])]
    tables, seen = [], []
    for key, value in m.items():
        if key == "labels" or not isinstance(value, list) or len(value) != len(labels):
            continue
        if not all(isinstance(row, list) and len(row) == len(labels) for row in value):
            continue
        if value in seen:  # "values" often repeats one of the named matrices
            continue
        seen.append(value)
        title = metric if key == "values" else f"{metric}: {key}"
        if key == "topk" and "k" in m:
            title = f"{metric}: top-{m['k']} overlap"
        elif key == "kendall":
            title = f"{metric}: Kendall tau"
        rows = [[fmt_num(v, 3) for v in row] for row in value]
        tables.append(MatrixTable(title, labels, rows, str(record.get("note") or "")))
    return tables


AXES = {
    "deletion": ("fraction of features removed (most important first)", "target probability"),
    "insertion": ("fraction of features revealed (most important first)", "target probability"),
    "randomization_sanity": (
        "layers randomized, from the top (cascading)",
        "similarity to the original attribution",
    ),
}


def _collect(into: Lines, owner: str, lines: Lines) -> None:
    """Add one explainer's lines; a random baseline identical to one already drawn is
    drawn once (the random order does not depend on the explainer)."""
    for name, x, y, dashed in lines.series:
        if dashed and any(d and np.array_equal(y, y2) for _, _, y2, d in into.series):
            continue
        if name in MAIN_NAMES or len(lines.series) == 1:
            label = owner
        elif dashed:
            earlier = any(d for *_, d in into.series)
            label = f"random order ({owner})" if earlier else "random order"
        else:
            label = f"{owner} ({name})"
        into.series.append((label, x, y, dashed))
    into.ticks = into.ticks or lines.ticks


def build(src: ReportSource) -> QualitySection:
    r = src.results
    rows: list[MetricRow] = []
    by_metric: dict[str, Lines] = {}
    for e in r.explainers.values():
        for metric, record in e.metrics.items():
            if not isinstance(record, dict):
                continue
            rows.append(_row(e.id, metric, record))
            if record.get("status", "ok") == "ok" and isinstance(record.get("curves"), dict):
                _collect(
                    by_metric.setdefault(metric, Lines([])), e.id, curve_series(record["curves"])
                )
    for metric, record in r.model_metrics.items():
        if isinstance(record, dict):
            rows.append(_row("model", metric, record))
    matrices = []
    for metric, record in r.cross_metrics.items():
        if isinstance(record, dict):
            rows.append(_row("all explainers", metric, record))
            matrices.extend(_matrices(metric, record))
    curves = []
    for metric, lines in by_metric.items():
        if not lines.series:
            continue
        xlabel, ylabel = AXES.get(metric, ("step", "value"))
        dashed = any(d for *_, d in lines.series)
        caption = f"{metric}: the mean curve of each explainer over the measured samples"
        caption += "; dashed: a random order, the baseline to beat." if dashed else "."
        curves.append(
            CurveFigure(
                metric,
                FigureRef(
                    f"quality/{slug(metric)}.png", f"{metric} curves of every explainer", caption
                ),
                lines.series,
                xlabel,
                ylabel,
                lines.ticks,
            )
        )
    note = (
        "Arrows give the better direction of each metric. Means are over the slice's samples "
        "with a 95% confidence interval (Student t)."
    )
    if not rows:
        note = (
            "The spec measures no explanation quality (add metrics such as deletion, "
            "insertion, randomization_sanity or completeness_error)."
        )
    owners = [e.id for e in r.explainers.values()]
    return QualitySection(rows, _overview(rows, owners), _groups(rows), curves, matrices, note)


def draw(view: QualitySection, src: ReportSource, canvas: Canvas) -> None:
    for c in view.curves:
        fig = figures.curves(c.metric, c.series, c.xlabel, c.ylabel, c.ticks)
        canvas.figure(c.figure.name, fig)


SECTION = Section("quality", "Explanation quality", build, draw, count_badge(lambda q: q.rows))
