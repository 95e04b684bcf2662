"""Section 4, Importance rankings: top-k bars per explainer, attribution maps, agreement.

For a local explainer the slice-level importance of a feature is its mean |attribution|
over the slice (spread: the standard deviation); images also get the mean |attribution|
map and the mean signed map of each explained class. Global explainers rank their own
features (columns, or grid cells of images). The agreement matrix is the Spearman rank
correlation of every pair of explainers' importances over all features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr

from auditor.report import figures
from auditor.report.canvas import Canvas
from auditor.report.common import FigureRef, fmt_num, fmt_seconds, slug
from auditor.report.source import ReportSource
from auditor.results import ExplainerResult

MAX_CLASS_MAPS = 20


@dataclass(frozen=True)
class FeatureBar:
    rank: int
    name: str
    importance: float
    spread: float | None
    importance_text: str
    spread_text: str


@dataclass
class RankingCard:
    id: str
    type: str
    scope: str
    seconds: str
    importance_label: str
    features: list[FeatureBar]
    bars_figure: FigureRef | None
    map_figure: FigureRef | None = None
    map_caption: str = ""
    fidelity: list[tuple[str, str]] = field(default_factory=list)
    has_spread: bool = False
    # drawing inputs (not shown as text)
    magnitude: np.ndarray | None = field(default=None, repr=False)
    class_maps: list[tuple[str, np.ndarray]] = field(default_factory=list, repr=False)


@dataclass
class Agreement:
    labels: list[str]
    matrix: list[list[float | None]]
    figure: FigureRef | None
    note: str
    excluded: list[str]


@dataclass
class RankingsSection:
    top_k: int
    cards: list[RankingCard]
    agreement: Agreement | None


def pixel_shape(src: ReportSource) -> tuple[int, int]:
    h, w = src.results.data.input_shape[-2:]
    return int(h), int(w)


def local_names(src: ReportSource) -> list[str]:
    """Names of a local explainer's features (the runner's ``feature_names``)."""
    d = src.results.data
    if d.modality == "tabular":
        n = int(np.prod(d.input_shape))
        return list(d.feature_names) if d.feature_names else [f"x{i}" for i in range(n)]
    h, w = pixel_shape(src)
    return [f"r{r}c{c}" for r in range(h) for c in range(w)]


def grid_names(layout: dict) -> list[str]:
    cells = [f"r{i}c{j}" for i in range(layout["rows"]) for j in range(layout["cols"])]
    if layout.get("channels", 1) == 1:
        return cells
    return [f"ch{k}_{c}" for k in range(layout["channels"]) for c in cells]


def grid_to_pixels(values: np.ndarray, layout: dict, shape: tuple[int, int]) -> np.ndarray | None:
    """One value per grid cell (and channel) -> an (H, W) map (channels averaged)."""
    rows, cols, channels = layout.get("rows"), layout.get("cols"), layout.get("channels", 1)
    re, ce = layout.get("row_edges"), layout.get("col_edges")
    if not (rows and cols and re and ce) or values.size != channels * rows * cols:
        return None
    cells = values.reshape(channels, rows, cols).mean(axis=0)
    row_of = np.repeat(np.arange(rows), np.diff(re))
    col_of = np.repeat(np.arange(cols), np.diff(ce))
    if len(row_of) != shape[0] or len(col_of) != shape[1]:
        return None
    return cells[row_of[:, None], col_of[None, :]]


def _names(src: ReportSource, e: ExplainerResult, size: int) -> list[str] | None:
    if e.scope == "local":
        names = local_names(src)
    else:
        layout = e.extra.get("features") or {}
        if layout.get("kind") == "grid":
            names = grid_names(layout)
        else:
            names = list(src.results.data.feature_names or [f"x{i}" for i in range(size)])
    return names if len(names) == size else None


def _top(src: ReportSource, e: ExplainerResult, k: int) -> list[FeatureBar]:
    arrays = src.ranking_arrays(e.id)
    names = _names(src, e, arrays[0].size) if arrays else None
    if arrays is not None and names is not None:
        importance, spread = arrays
        order = np.argsort(-np.abs(importance), kind="stable")[:k]
        entries = [(names[i], float(importance[i]), float(spread[i])) for i in order]
        has_spread = bool(np.any(spread != 0))
    else:  # only the top of the ranking kept in results.json
        entries = [(r.feature, r.importance, r.spread) for r in e.ranking[:k]]
        has_spread = any(s is not None for _, _, s in entries)
    return [
        FeatureBar(
            rank=i + 1,
            name=name,
            importance=imp,
            spread=spread if has_spread else None,
            importance_text=fmt_num(imp),
            spread_text=fmt_num(spread) if has_spread and spread is not None else "—",
        )
        for i, (name, imp, spread) in enumerate(entries)
    ]


def target_counts(src: ReportSource) -> np.ndarray:
    """Samples explained for each class (class maps of classes never explained are empty)."""
    confusion = np.asarray(src.results.predictions.confusion, dtype=np.int64)
    n = len(src.class_names)
    targets = src.results.predictions.targets
    if confusion.shape != (n, n):
        return np.zeros(n, dtype=np.int64)
    if targets == "predicted":
        return confusion.sum(axis=0)
    if targets == "label":
        return confusion.sum(axis=1)
    counts = np.zeros(n, dtype=np.int64)
    k = (
        int(targets)
        if targets.isdigit()
        else (src.class_names.index(targets) if targets in src.class_names else -1)
    )
    if 0 <= k < n:
        counts[k] = src.results.predictions.n
    return counts


def _maps(src: ReportSource, e: ExplainerResult, card: RankingCard) -> None:
    """Images: the importance map, and per-class mean signed maps of local explainers."""
    arrays = src.ranking_arrays(e.id)
    if arrays is None:
        return
    shape = pixel_shape(src)
    if e.scope == "local" and arrays[0].size == shape[0] * shape[1]:
        card.magnitude = arrays[0].reshape(shape)
        maps = src.class_maps(e.id)
        counts = target_counts(src)
        if maps is not None and maps.shape == (len(counts), shape[0] * shape[1]):
            explained = [k for k in np.argsort(-counts, kind="stable") if counts[k] > 0]
            chosen = sorted(explained[:MAX_CLASS_MAPS])
            card.class_maps = [
                (f"{src.class_name(int(k))} (n={counts[k]})", maps[k].reshape(shape))
                for k in chosen
            ]
        more = len([c for c in counts if c > 0]) - len(card.class_maps)
        signed = any(float(np.nanmin(m)) < 0 for _, m in card.class_maps)
        card.map_caption = (
            "Left: mean |attribution| per pixel over the slice (channels averaged). Right: the "
            "mean attribution of the samples explained for each class (n: how many), on one "
            "shared scale"
            + (
                " (red raises the class score, blue lowers it)."
                if signed
                else "; this explainer gives magnitudes only."
            )
            + (f" {more} less frequent classes are not shown." if more > 0 else "")
        )
    elif e.scope == "global":
        pixels = grid_to_pixels(arrays[0], e.extra.get("features") or {}, shape)
        if pixels is None:
            return
        card.magnitude = pixels
        card.map_caption = "Importance of each grid cell, drawn over the image area it covers."
    if card.magnitude is not None:
        card.map_figure = FigureRef(
            f"rankings/{slug(e.id)}-maps.png", f"Attribution maps of {e.id}", card.map_caption
        )


def _card(src: ReportSource, e: ExplainerResult, k: int) -> RankingCard:
    features = _top(src, e, k)
    if e.scope == "local":
        label = "mean |attribution| over the slice"
        if any(f.spread is not None for f in features):
            label += " (whiskers: standard deviation)"
    else:
        label = str(e.extra.get("importance") or "importance")
    card = RankingCard(
        id=e.id,
        type=e.type,
        scope=e.scope,
        seconds=fmt_seconds(e.seconds),
        importance_label=label,
        features=features,
        bars_figure=FigureRef(
            f"rankings/{slug(e.id)}.png",
            f"Bar chart of the {len(features)} most important features of {e.id}: "
            + ", ".join(f.name for f in features[:5]),
        )
        if features
        else None,
        fidelity=[(name, fmt_num(v)) for name, v in e.fidelity.items()],
        has_spread=any(f.spread is not None for f in features),
    )
    if src.modality == "image":
        _maps(src, e, card)
    return card


def _vector(src: ReportSource, e: ExplainerResult) -> np.ndarray | None:
    """Importances over a common feature space: tabular columns, or image pixels."""
    arrays = src.ranking_arrays(e.id)
    if arrays is None:
        return None
    values = arrays[0]
    if src.modality == "image" and e.scope == "global":
        pixels = grid_to_pixels(values, e.extra.get("features") or {}, pixel_shape(src))
        return None if pixels is None else pixels.ravel()
    return values


def agreement(src: ReportSource) -> Agreement | None:
    vectors, excluded = {}, []
    for e in src.ok():
        v = _vector(src, e)
        if v is None:
            excluded.append(e.id)
        else:
            vectors[e.id] = np.abs(v)
    sizes = {v.size for v in vectors.values()}
    if len(sizes) > 1:  # keep the most common feature space
        common = max(sizes, key=lambda s: sum(v.size == s for v in vectors.values()))
        excluded += [k for k, v in vectors.items() if v.size != common]
        vectors = {k: v for k, v in vectors.items() if v.size == common}
    if len(vectors) < 2:
        return None
    labels = list(vectors)
    matrix: list[list[float | None]] = []
    for a in labels:
        row: list[float | None] = []
        for b in labels:
            if a == b:
                row.append(1.0)
                continue
            if np.ptp(vectors[a]) == 0 or np.ptp(vectors[b]) == 0:
                row.append(None)  # a constant ranking has no order to compare
                continue
            rho = spearmanr(vectors[a], vectors[b]).statistic
            row.append(None if not np.isfinite(rho) else float(rho))
        matrix.append(row)
    note = (
        "Spearman rank correlation of the slice-level importances (mean |attribution| for "
        "local explainers) over every feature: 1 means the same order, 0 no relation."
    )
    if src.modality == "image" and any(e.scope == "global" for e in src.ok() if e.id in vectors):
        note += (
            " Global explainers rank grid cells; each pixel takes its cell's importance, so "
            "pixels of one cell are tied."
        )
    if excluded:
        note += f" Not comparable (other features or no stored ranking): {', '.join(excluded)}."
    return Agreement(
        labels=labels,
        matrix=matrix,
        figure=FigureRef("rankings/agreement.png", "Matrix of rank agreement between explainers"),
        note=note,
        excluded=excluded,
    )


def build(src: ReportSource) -> RankingsSection:
    k = src.options.top_k
    return RankingsSection(
        top_k=k, cards=[_card(src, e, k) for e in src.ok()], agreement=agreement(src)
    )


def draw(view: RankingsSection, src: ReportSource, canvas: Canvas) -> None:
    for card in view.cards:
        if card.bars_figure:
            fig = figures.ranking_bars(
                [f.name for f in card.features],
                [f.importance for f in card.features],
                [f.spread for f in card.features],
                card.importance_label.split(" (")[0],
            )
            canvas.figure(card.bars_figure.name, fig)
        if card.map_figure is not None and card.magnitude is not None:
            label = "mean |attribution|" if card.scope == "local" else "importance"
            fig = figures.attribution_maps(card.magnitude, label, card.class_maps)
            canvas.figure(card.map_figure.name, fig)
    a = view.agreement
    if a is not None and a.figure is not None:
        m = np.array([[np.nan if v is None else v for v in row] for row in a.matrix])
        notes = [["—" if v is None else f"{v:.2f}" for v in row] for row in a.matrix]
        fig = figures.heatmap(
            m,
            a.labels,
            a.labels,
            xlabel="",
            ylabel="",
            signed=True,
            annotations=notes,
            colourbar="Spearman ρ",
        )
        canvas.figure(a.figure.name, fig)
