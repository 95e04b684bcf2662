"""Charts drawn with matplotlib (Agg, no pyplot state): bars, histograms, heatmaps, curves.

Each function returns a ``matplotlib.figure.Figure`` sized in inches for an A4 column
(about 7 inches wide); ``Canvas.figure`` saves it. Colours: the report's colour-blind-safe
maps (``auditor.report.colormaps``) and Paul Tol's "bright" qualitative set for lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.colors import Normalize, TwoSlopeNorm
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


def ranking_bars(
    names: Sequence[str], values: Sequence[float], spread: Sequence[float | None], xlabel: str
) -> Figure:
    """Horizontal bars of the top features, largest on top, whiskers at ± spread."""
    n = len(names)
    fig = new_figure(3.3, 0.6 + 0.22 * max(n, 3))
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    err = [s if s is not None else 0.0 for s in spread]
    has_err = any(s is not None for s in spread)
    ax.barh(y, values, color=ACCENT, height=0.7, zorder=2)
    if has_err:
        ax.errorbar(
            values,
            y,
            xerr=[np.zeros(n), err],
            fmt="none",
            ecolor=INK,
            elinewidth=0.8,
            capsize=2,
            zorder=3,
        )
    ax.set_yticks(y, [shorten(s) for s in names])
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color="#E5E7EB", zorder=0)
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(left=min(0.0, float(np.min(values)) if n else 0.0))
    return fig


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
        ax.bar(e[:-1], counts, width=np.diff(e), align="edge", color=ACCENT, linewidth=0)
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


def count_bars(names: Sequence[str], counts: Sequence[int], ylabel: str) -> Figure:
    """Vertical bars of class counts."""
    n = len(names)
    fig = new_figure(min(3.5, 1.3 + 0.25 * n), 2.2)
    ax = fig.add_subplot()
    x = np.arange(n)
    ax.bar(x, counts, color=ACCENT, width=0.7, zorder=2)
    rotate = n > 10 or max((len(s) for s in names), default=0) > 4
    ax.set_xticks(
        x,
        [shorten(s, 16) for s in names],
        rotation=60 if rotate else 0,
        ha="right" if rotate else "center",
    )
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", color="#E5E7EB", zorder=0)
    for xi, c in zip(x, counts, strict=True):
        ax.text(xi, c, str(c), ha="center", va="bottom", fontsize=6.5, color=MUTED)
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


def _mosaic(
    maps: Sequence[np.ndarray], cols: int, gap_x: int, gap_y: int
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Maps of one shape tiled into one array (NaN between tiles, room above each tile for
    a title) and each tile's top centre."""
    h, w = maps[0].shape
    rows = -(-len(maps) // cols)
    out = np.full((rows * (h + gap_y), cols * (w + gap_x) - gap_x), np.nan)
    centres = []
    for i, m in enumerate(maps):
        r, c = divmod(i, cols)
        top, left = r * (h + gap_y) + gap_y, c * (w + gap_x)
        out[top : top + h, left : left + w] = m
        centres.append((left + (w - 1) / 2, top - 0.5))
    return out, centres


def attribution_maps(
    magnitude: np.ndarray,
    magnitude_label: str,
    class_maps: Sequence[tuple[str, np.ndarray]],
) -> Figure:
    """Mean |attribution| map (sequential) beside the per-class mean maps on one scale
    (diverging when any value is negative, else sequential). Tiles are drawn as one image
    per group: far faster than a subplot per class."""
    h, w = magnitude.shape
    cols = min(5, max(len(class_maps), 1))
    rows = -(-len(class_maps) // cols) if class_maps else 1
    gap_x, gap_y = max(1, round(0.15 * w)), max(2, round(0.3 * h))
    tile = 0.95  # inches per map
    width = tile * 1.25 + (tile * cols + 0.7 if class_maps else 0) + 0.9
    fig = new_figure(width, max(1.6, rows * tile * 1.3 + 0.3))
    ratios = [1.25 * rows, 0.06 * rows] + ([cols * 1.0, 0.06 * rows] if class_maps else [])
    grid = fig.add_gridspec(1, len(ratios), width_ratios=ratios)
    ax = fig.add_subplot(grid[0, 0])
    image = ax.imshow(magnitude, cmap=SEQUENTIAL, vmin=0, interpolation="nearest")
    ax.set_title(magnitude_label)
    ax.set_axis_off()
    bar = fig.colorbar(image, cax=fig.add_subplot(grid[0, 1]))
    bar.ax.tick_params(labelsize=5.5)
    if class_maps:
        mosaic, centres = _mosaic([m for _, m in class_maps], cols, gap_x, gap_y)
        limit = float(np.nanmax(np.abs(mosaic))) or 1.0
        signed = bool(np.nanmin(mosaic) < 0)
        norm = TwoSlopeNorm(0.0, -limit, limit) if signed else Normalize(0, limit)
        ax = fig.add_subplot(grid[0, 2])
        cmap = (DIVERGING if signed else SEQUENTIAL).with_extremes(bad=(1, 1, 1, 0))
        image = ax.imshow(
            np.ma.masked_invalid(mosaic), cmap=cmap, norm=norm, interpolation="nearest"
        )
        for (title, _), (x, y) in zip(class_maps, centres, strict=True):
            ax.text(x, y - 0.15 * h, shorten(title, 16), ha="center", va="bottom", fontsize=6.5)
        ax.set_axis_off()
        bar = fig.colorbar(image, cax=fig.add_subplot(grid[0, 3]))
        bar.ax.tick_params(labelsize=5.5)
        bar.set_label("mean attribution per class", fontsize=6.5)
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
