"""Charts drawn with matplotlib (Agg, no pyplot state): signed bars, histograms, heatmaps,
curves. (Ranking bars, attribution maps and the agreement matrix are drawn in HTML.)

Each function returns a ``matplotlib.figure.Figure`` sized in inches for an A4 column
(about 7 inches wide); ``Canvas.figure`` saves it. Colours: the report's colour-blind-safe
maps (``auditor.report.colormaps``) and Paul Tol's "bright" qualitative set for lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from auditor.report.colormaps import ACCENT, DIVERGING, INK, MUTED, NEGATIVE, POSITIVE, SEQUENTIAL

matplotlib.use("Agg")

#: Tol's "bright" qualitative scheme (colour-blind safe) for lines of several explainers.
QUALITATIVE = ("#4477AA", "#EE6677", "#228833", "#CCBB44", "#66CCEE", "#AA3377", "#BBBBBB")

STYLE = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "axes.edgecolor": "#8C959F",
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "text.color": INK,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


def new_figure(width: float, height: float) -> Figure:
    matplotlib.rcParams.update(STYLE)
    return Figure(figsize=(width, height), layout="constrained")


def shorten(text: str, limit: int = 38) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def signed_bars(names: Sequence[str], values: Sequence[float], xlabel: str) -> Figure:
    """Horizontal bars of signed values (coefficients): red positive, blue negative."""
    n = len(names)
    fig = new_figure(6.2, 0.6 + 0.24 * max(n, 3))
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    colours = [POSITIVE if v >= 0 else NEGATIVE for v in values]
    ax.barh(y, values, color=colours, height=0.7, zorder=2)
    ax.axvline(0, color=INK, linewidth=0.8)
    ax.set_yticks(y, [shorten(s) for s in names])
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#E5E7EB", zorder=0)
    ax.tick_params(axis="y", length=0)
    return fig


def histograms(panels: Sequence[tuple[str, list[float], list[int], float, float]]) -> Figure:
    """Small multiples: one weight histogram per panel (name, edges, counts, mean, std)."""
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = new_figure(2.35 * cols, 1.55 * rows + 0.2)
    for i, (name, edges, counts, mean, std) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        e = np.asarray(edges)
        # one filled step outline, not a rectangle per bin: the same pixels, drawn faster
        ax.stairs(counts, e, fill=True, color=ACCENT, linewidth=0)
        ax.axvline(0, color=MUTED, linewidth=0.6, linestyle=":")
        ax.set_title(shorten(name, 34), loc="left")
        ax.text(
            0.98,
            0.95,
            f"μ {mean:.3g}\nσ {std:.3g}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=6.5,
            color=MUTED,
        )
        ax.set_yticks([])
        ax.spines["left"].set_visible(False)
    return fig


def heatmap(
    matrix: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    *,
    xlabel: str,
    ylabel: str,
    signed: bool,
    annotations: Sequence[Sequence[str]] | None = None,
    colour_values: np.ndarray | None = None,
    colourbar: str | None = None,
) -> Figure:
    """A labelled matrix (confusion, agreement), cells annotated; NaN cells grey."""
    n_rows, n_cols = matrix.shape
    size = min(5.6, 1.6 + 0.3 * max(n_rows, n_cols))
    fig = new_figure(size + (0.9 if colourbar else 0.2), size)
    ax = fig.add_subplot()
    shown = matrix if colour_values is None else colour_values
    shown = np.ma.masked_invalid(np.asarray(shown, dtype=np.float64))
    norm = (
        Normalize(-1, 1) if signed else Normalize(0, max(float(np.nanmax(shown.filled(0))), 1e-12))
    )
    image = ax.imshow(shown, cmap=DIVERGING if signed else SEQUENTIAL, norm=norm, aspect="equal")
    longest = max((len(c) for c in cols), default=0)
    tilt = longest * n_cols > 40 or longest > 10
    ax.set_xticks(
        range(n_cols),
        [shorten(c, 18) for c in cols],
        rotation=35 if tilt else 0,
        ha="right" if tilt else "center",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(n_rows), [shorten(r, 22) for r in rows])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[:].set_visible(False)
    ax.tick_params(length=0)
    if annotations is not None and n_rows * n_cols <= 400:
        for i in range(n_rows):
            for j in range(n_cols):
                value = shown[i, j]
                strong = (not np.ma.is_masked(value)) and abs(
                    norm(value) - (0.5 if signed else 0)
                ) > (0.3 if signed else 0.55)
                ax.text(
                    j,
                    i,
                    annotations[i][j],
                    ha="center",
                    va="center",
                    fontsize=6.5 if n_cols > 12 else 7.5,
                    color="white" if strong else INK,
                )
    if colourbar:
        fig.colorbar(image, ax=ax, shrink=0.7, label=colourbar)
    return fig


def curves(
    title: str,
    series: Sequence[tuple[str, np.ndarray, np.ndarray, bool]],
    xlabel: str,
    ylabel: str,
    ticks: Sequence[str] | None = None,
) -> Figure:
    """Lines (label, x, y, dashed): one colour per explainer, dashed grey for the random
    baseline, and a line style per kind of curve ("saliency (ssim)" dotted after
    "saliency (spearman)"); ``ticks`` name the x positions 0, 1, ... (e.g. layers)."""
    fig = new_figure(3.3, 3.3 if ticks else 3.0)
    ax = fig.add_subplot()
    colours: dict[str, str] = {}
    styles: dict[str, str] = {}
    for label, x, y, dashed in series:
        owner, _, rest = label.partition(" (")
        kind = rest.rstrip(")")
        if dashed and label.startswith("random order"):
            colour = colours.get(kind, MUTED)
            style = "--"
        else:
            colour = colours.setdefault(owner, QUALITATIVE[len(colours) % len(QUALITATIVE)])
            style = styles.setdefault(kind, ("-", ":", "-.")[min(len(styles), 2)])
        ax.plot(
            x,
            y,
            color=colour,
            linestyle=style,
            linewidth=1.0 if dashed else 1.5,
            label=label,
            marker="o" if ticks else None,
            markersize=2.5,
        )
    if ticks:
        ax.set_xticks(
            range(len(ticks)),
            [shorten(t, 14) for t in ticks],
            rotation=30,
            ha="right",
            rotation_mode="anchor",
        )
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel, fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    ax.grid(color="#E5E7EB")
    fig.legend(
        fontsize=6, frameon=False, loc="outside lower center", ncols=2 if len(series) > 3 else 1
    )
    return fig


#: Marker colours of a check's status in trend charts (colour-blind safe: Tol's bright).
STATUS_COLOURS = {
    "pass": "#228833",
    "fail": "#EE6677",
    "error": "#AA3377",
    "skipped": "#BBBBBB",
}


def trend(
    verdicts: Sequence[str],
    panels: Sequence[tuple[str, Sequence[float | None], Sequence[str | None], float | None]],
    labels: Sequence[str],
) -> Figure:
    """Small multiples over the last runs (oldest left): the verdicts, then one line
    chart per metric (name, values, check status per run, threshold) with a marker per run
    coloured by its check's status (green pass, red fail, purple error, grey none) and the
    check's threshold dashed. ``labels`` name the runs on the x axis (a few are shown)."""
    n = len(verdicts)
    cols = 2 if panels else 1
    rows = -(-(len(panels) + 1) // cols)
    fig = new_figure(6.8, 0.3 + 1.45 * rows)
    x = np.arange(n)
    every = max(1, -(-n // 4))
    ticks = [t for t in range(0, n, every) if n - 1 - t >= every / 2] + [n - 1]
    size = 16 if n <= 60 else 5

    def axes(i: int, title: str) -> Axes:
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.set_title(shorten(title, 44), loc="left")
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_xticks(ticks, [shorten(labels[t], 12) for t in ticks], fontsize=6)
        return ax

    strip = axes(0, "verdict (green pass, red fail, purple error)")
    colours = [STATUS_COLOURS.get(v, MUTED) for v in verdicts]
    passed = [1.0 if v == "pass" else 0.0 for v in verdicts]
    strip.plot(x, passed, color=MUTED, linewidth=0.8, zorder=1)
    strip.scatter(x, passed, c=colours, marker="s", s=size * 1.5, zorder=2, linewidths=0)
    strip.set_ylim(-0.4, 1.4)
    strip.set_yticks([0, 1], ["not passed", "passed"])
    for i, (name, values, statuses, threshold) in enumerate(panels):
        ax = axes(i + 1, name)
        y = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        ax.plot(x, y, color=ACCENT, linewidth=1.2, zorder=2)
        marker = [STATUS_COLOURS.get(s or "", MUTED) for s in statuses]
        ax.scatter(x, y, c=marker, s=size, zorder=3, linewidths=0)
        if threshold is not None:
            ax.axhline(threshold, color=INK, linewidth=0.8, linestyle="--", zorder=1)
        ax.grid(axis="y", color="#E5E7EB", zorder=0)
    return fig
