"""Section: Importance rankings: top-k bars per explainer, attribution maps, agreement.

Drawn without matplotlib: the bars are HTML beside the numbers they show, each map is a
small picture coloured with numpy (``overlay.map_picture``) under an HTML colour bar, and
the agreement matrix is an HTML table with coloured cells. A report has many of these, and
a matplotlib figure costs about 0.1-0.2 s to draw (and more to lay out in the PDF).

For a local explainer the slice-level importance of a feature is its mean |attribution|
over the slice (spread: the standard deviation); images also get the mean |attribution|
map and the mean signed map of each explained class. Images larger than 32x32 are ranked by
regions (``auditor.explainers.regions``), smaller ones by pixels. Global explainers rank their
own features (columns, or grid cells of images). Equal importances are marked as ties, and a
ranking whose whole top k is one tie is shown as that tie, not as an arbitrary top k. With
``data.groups`` each card first shows the ranking of groups (and ungrouped columns), with the
same tie treatment. The
agreement matrix is the Spearman rank correlation of every pair of explainers' importances
over all features (pixels, for images).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from auditor.explainers.ranking import tie_groups, tied_top
from auditor.explainers.regions import image_regions, layout_names
from auditor.report.canvas import Canvas
from auditor.report.colormaps import css_gradient, is_dark, to_hex
from auditor.report.common import (
    Bar,
    ColourBar,
    FigureRef,
    bars,
    fmt_num,
    fmt_seconds,
    slug,
)
from auditor.report.overlay import map_mosaic, map_picture, picture_ext
from auditor.report.sections.base import Section
from auditor.report.source import ReportSource
from auditor.report.tokens import slice_scores
from auditor.results import ExplainerResult, RankedFeature

MAX_CLASS_MAPS = 20
MAIN_TILE = 128  # CSS px: the displayed width of the importance map
CLASS_COLUMNS = 5  # class maps across (each 64 CSS px, drawn at twice that)


@dataclass(frozen=True)
class FeatureBar:
    rank: int  # ties share the rank of their first member
    name: str
    importance: float
    spread: float | None
    importance_text: str
    spread_text: str
    bar: Bar
    tied: bool = False  # equal importance to a neighbouring feature

    @property
    def rank_text(self) -> str:
        """``3``, or ``=3`` for a feature tied with others at rank 3."""
        return f"={self.rank}" if self.tied else str(self.rank)


@dataclass(frozen=True)
class MapTile:
    """One attribution map: its title ("3 (n=104)") and, when drawn alone, its picture."""

    figure: FigureRef | None
    title: str
    values: np.ndarray = field(repr=False, compare=False)


@dataclass
class RankingCard:
    id: str
    type: str
    scope: str
    seconds: str
    importance_label: str
    features: list[FeatureBar]
    map_tile: MapTile | None = None  # mean |attribution| (local) or importance (global)
    map_bar: ColourBar | None = None
    class_tiles: list[MapTile] = field(default_factory=list)  # drawn as one picture:
    class_figure: FigureRef | None = None
    class_bar: ColourBar | None = None
    map_caption: str = ""
    fidelity: list[tuple[str, str]] = field(default_factory=list)
    has_spread: bool = False
    #: Set when the whole top k is one tie: shown instead of the table (then ``features``
    #: is empty), e.g. "all 500 features tie (value 0)".
    tie_message: str = ""
    has_ties: bool = False  # some shown features are marked as tied
    #: Text: the top tokens over the slice (shown instead of the feature table).
    tokens: list[TokenRow] = field(default_factory=list)
    #: With data.groups: the group ranking, shown before the column ranking.
    groups: GroupTable | None = None


@dataclass(frozen=True)
class GroupTable:
    """The ranking of feature groups (data.groups) and the columns in no group."""

    features: list[FeatureBar]
    tie_message: str
    has_ties: bool
    has_spread: bool
    label: str


@dataclass(frozen=True)
class TokenRow:
    """A token of a text explainer's top list over the slice (``rankings/<id>.tokens.json``)."""

    rank: int
    token: str
    score: str
    mean: str  # signed mean attribution
    mean_abs: str
    count: int
    bar: Bar


@dataclass(frozen=True)
class HeatCell:
    text: str
    background: str  # "#rrggbb"
    dark: bool  # white text on it


@dataclass
class Agreement:
    labels: list[str]
    matrix: list[list[float | None]]
    cells: list[list[HeatCell]]
    bar: ColourBar
    note: str
    excluded: list[str]


@dataclass
class RankingsSection:
    top_k: int
    cards: list[RankingCard]
    agreement: Agreement | None
    features_word: str = "features"  # what the ranked features are (tokens for text)


def pixel_shape(src: ReportSource) -> tuple[int, int]:
    h, w = src.results.data.input_shape[-2:]
    return int(h), int(w)


def local_names(src: ReportSource) -> list[str]:
    """Names of a local explainer's features (what the runner ranked; none for text)."""
    return src.local_names or []


def grid_names(layout: dict) -> list[str]:
    """The names ``Grid.feature_names`` gave the cells of a global explainer's grid."""
    return layout_names({"kind": "grid", **layout}) or []


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


def global_names(src: ReportSource, e: ExplainerResult, size: int) -> list[str]:
    """A global explainer's feature names: its grid's cells, the names it stored with its
    features (``extra.features.names``, e.g. the tokens of a bag-of-words surrogate), or
    the data's feature names (``x0, x1, ...`` when there are none)."""
    layout = e.extra.get("features") or {}
    if layout.get("kind") == "grid":
        return grid_names(layout)
    stored = layout.get("names")
    if isinstance(stored, list) and len(stored) == size:
        return [str(name) for name in stored]
    return list(src.results.data.feature_names or [f"x{i}" for i in range(size)])


def feature_names_of(src: ReportSource, e: ExplainerResult, size: int) -> list[str] | None:
    names = local_names(src) if e.scope == "local" else global_names(src, e, size)
    return names if len(names) == size else None


def _top(src: ReportSource, e: ExplainerResult, k: int) -> tuple[list[FeatureBar], str]:
    """The top ``k`` features with ties marked, or none and the message for an all-tied top."""
    arrays = src.ranking_arrays(e.id)
    names = feature_names_of(src, e, arrays[0].size) if arrays else None
    if arrays is not None and names is not None:
        importance, spread = arrays
        has_spread = bool(np.any(spread != 0))
    else:  # only the top of the ranking kept in results.json
        names, importance, spread, has_spread = _kept(e.ranking)
    features, message = _top_of(e, names, importance, spread, has_spread, k)
    split = _split_group(src, e, importance) if message else None
    if split is not None:
        tied = int(np.count_nonzero(tie_groups(importance)[1] == 0))
        message = (
            f"the top {tied} of {importance.size} features share one value, "
            f"{split}'s split evenly over its columns (see the group ranking above)"
        )
    return features, message


def _split_group(src: ReportSource, e: ExplainerResult, importance: np.ndarray) -> str | None:
    """The group whose evenly split value is the tied top of a column ranking, if one is."""
    path = src.folder.file("rankings/groups.json")
    if e.group_ranking is None or not path.is_file():
        return None
    layout = json.loads(path.read_text())
    unit_of = np.asarray(layout.get("unit_of", []), dtype=np.int64)
    if unit_of.size != importance.size:
        return None
    order, starts = tie_groups(importance)
    units = np.unique(unit_of[order[starts == 0]])
    if len(units) != 1 or int(np.count_nonzero(unit_of == units[0])) != int(np.sum(starts == 0)):
        return None
    return str(layout["names"][int(units[0])])


def _kept(ranking: list[RankedFeature]) -> tuple[list[str], np.ndarray, np.ndarray, bool]:
    """Names, importance and spread of the top kept in results.json."""
    names = [r.feature for r in ranking]
    importance = np.array([r.importance for r in ranking], dtype=np.float64)
    spread = np.array([np.nan if r.spread is None else r.spread for r in ranking])
    return names, importance, spread, bool(np.any(np.isfinite(spread)))


def _group_top(src: ReportSource, e: ExplainerResult, k: int) -> GroupTable | None:
    """The group ranking (data.groups): every group and ungrouped column, ties marked as in
    the column ranking; None without groups."""
    if e.group_ranking is None:
        return None
    names: list[str] | None = None
    path = src.folder.file(f"rankings/{e.id}.groups.npy")
    names_path = src.folder.file("rankings/groups.json")
    if path.is_file() and names_path.is_file():
        data = np.load(path, allow_pickle=False)
        names = list(json.loads(names_path.read_text())["names"])
        importance, spread = np.asarray(data[0], np.float64), np.asarray(data[1], np.float64)
        has_spread = bool(np.any(spread != 0))
    if names is None or len(names) != importance.size:
        names, importance, spread, has_spread = _kept(e.group_ranking)
    features, message = _top_of(e, names, importance, spread, has_spread, k)
    if e.scope == "local":
        label = "mean over the slice of |the sum of the group's column attributions|"
    else:
        label = "the sum of the group's column importances"
    return GroupTable(
        features=features,
        tie_message=message,
        has_ties=any(f.tied for f in features),
        has_spread=any(f.spread is not None for f in features),
        label=label,
    )


def _top_of(
    e: ExplainerResult,
    names: list[str],
    importance: np.ndarray,
    spread: np.ndarray,
    has_spread: bool,
    k: int,
) -> tuple[list[FeatureBar], str]:
    """The top ``k`` of one ranking with ties marked, or none and the all-tied message."""
    message = tie_message(e, importance, k)
    if message:
        return [], message
    order, starts = tie_groups(importance)
    group_sizes = np.bincount(starts)
    order, starts = order[:k], starts[:k]
    entries = [(names[i], float(importance[i]), float(spread[i])) for i in order]
    shapes = bars(
        [imp for _, imp, _ in entries], [s if has_spread else None for _, _, s in entries]
    )
    return [
        FeatureBar(
            rank=int(starts[i]) + 1,
            name=name,
            importance=imp,
            spread=spread if has_spread and np.isfinite(spread) else None,
            importance_text=fmt_num(imp),
            spread_text=fmt_num(spread) if has_spread and np.isfinite(spread) else "—",
            bar=bar,
            tied=bool(group_sizes[starts[i]] > 1),
        )
        for i, ((name, imp, spread), bar) in enumerate(zip(entries, shapes, strict=True))
    ], ""


def tie_message(e: ExplainerResult, importance: np.ndarray, k: int) -> str:
    """What to show instead of a top ``k`` that is one tie ("" when the top k is not)."""
    tied = tied_top(importance, k)
    if not tied:
        return ""
    n = int(np.asarray(importance).size)
    value = float(np.max(np.abs(np.nan_to_num(importance))))
    if e.type == "permutation_importance" and value == 0:
        return (
            f"no feature changes the score when shuffled alone (all {n} features have importance 0)"
        )
    if tied == n:
        return f"all {n} features tie (value {fmt_num(value)})"
    return (
        f"the top {tied} of {n} features tie (value {fmt_num(value)}); "
        f"a top {k} of them would be an arbitrary pick"
    )


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


def colour_bar(limit: float, signed: bool, label: str) -> ColourBar:
    """The HTML colour bar of maps coloured on ``[0, limit]`` or ``[-limit, limit]``."""
    text = fmt_num(limit, 3)
    ticks = [f"−{text}", "0", text] if signed else ["0", "", text]
    span = f"−{text} … 0 … {text}" if signed else f"0 … {text}"
    return ColourBar(css_gradient(signed), ticks, f"{label}: {span}", limit, signed)


def _limit(maps: list[np.ndarray]) -> float:
    finite = [np.abs(m[np.isfinite(m)]) for m in maps]
    top = max((float(f.max()) for f in finite if f.size), default=0.0)
    return top if top > 0 else 1.0


def _maps(src: ReportSource, e: ExplainerResult, card: RankingCard) -> None:
    """Images: the importance map, and per-class mean signed maps of local explainers."""
    arrays = src.ranking_arrays(e.id)
    if arrays is None:
        return
    shape = pixel_shape(src)
    ext = picture_ext(src.results.data.input_shape)
    stem = f"rankings/{slug(e.id)}"
    pixels = local_pixel_map(src, e, arrays[0]) if e.scope == "local" else None
    if pixels is not None:
        magnitude = pixels
        maps = src.class_maps(e.id)
        counts = target_counts(src)
        if maps is not None and maps.shape == (len(counts), shape[0] * shape[1]):
            explained = [k for k in np.argsort(-counts, kind="stable") if counts[k] > 0]
            chosen = sorted(explained[:MAX_CLASS_MAPS])
            card.class_tiles = [
                MapTile(None, f"{src.class_name(int(k))} (n={counts[k]})", maps[k].reshape(shape))
                for k in chosen
            ]
        more = len([c for c in counts if c > 0]) - len(card.class_tiles)
        signed = any(float(np.nanmin(t.values)) < 0 for t in card.class_tiles)
        if card.class_tiles:
            card.class_figure = FigureRef(
                f"{stem}-classes.png",
                f"Mean attribution of {e.id} per explained class: "
                + ", ".join(t.title for t in card.class_tiles),
            )
            card.class_bar = colour_bar(
                _limit([t.values for t in card.class_tiles]),
                signed,
                "mean attribution per class",
            )
        label = "mean |attribution|"
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
        magnitude, label = pixels, "importance"
        card.map_caption = "Importance of each grid cell, drawn over the image area it covers."
    else:
        return
    top = float(np.nanmax(magnitude)) if np.isfinite(magnitude).any() else 0.0
    card.map_tile = MapTile(
        FigureRef(f"{stem}-{'mean' if e.scope == 'local' else 'grid'}.{ext}", f"{label} of {e.id}"),
        label,
        magnitude,
    )
    card.map_bar = colour_bar(top if top > 0 else 1.0, False, label)


def local_pixel_map(src: ReportSource, e: ExplainerResult, ranked: np.ndarray) -> np.ndarray | None:
    """A local explainer's ``(H, W)`` mean |attribution|: its ranking when that is per pixel,
    else the per-pixel map stored beside a ranking of regions (or the regions, spread out)."""
    shape = pixel_shape(src)
    if ranked.size == shape[0] * shape[1]:
        return ranked.reshape(shape)
    regions = image_regions(tuple(src.results.data.input_shape))
    if regions is None or ranked.size != regions.count:
        return None
    path = src.folder.file(f"rankings/{e.id}.pixels.npy")
    if path.is_file():
        stored = np.load(path, allow_pickle=False)
        if stored.size == shape[0] * shape[1]:
            return np.asarray(stored, np.float64).reshape(shape)
    return regions.to_pixels(ranked)


def token_rows(src: ReportSource, e: ExplainerResult, k: int) -> list[TokenRow]:
    """Text: the top ``k`` tokens of a local explainer with their mean, count and score."""
    ranked = src.token_rankings(e.id) if e.scope == "local" else None
    if ranked is None:
        return []
    top = ranked.overall[:k]
    return [
        TokenRow(
            rank=i + 1,
            token=t.token,
            score=fmt_num(t.score),
            mean=fmt_num(t.mean),
            mean_abs=fmt_num(t.mean_abs),
            count=t.count,
            bar=bar,
        )
        for i, (t, bar) in enumerate(zip(top, bars([t.score for t in top]), strict=True))
    ]


def _card(src: ReportSource, e: ExplainerResult, k: int) -> RankingCard:
    features, message = _top(src, e, k)
    if e.scope == "local":
        label = "mean |attribution| over the slice"
        if src.view.ranks_regions(src.results.data.input_shape):
            label += ", per region of the image (the mean over its pixels)"
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
        fidelity=[(name, fmt_num(v)) for name, v in e.fidelity.items()],
        has_spread=any(f.spread is not None for f in features),
        tie_message=message,
        has_ties=any(f.tied for f in features),
        groups=_group_top(src, e, k),
    )
    if src.view.pictures:
        _maps(src, e, card)
    card.tokens = token_rows(src, e, k)
    if card.tokens:
        card.importance_label = (
            "score of each token over the slice, the shrunk mean |attribution| "
            "sum / (count + 5), so that a rare token with one large value does not outrank "
            "a frequent, consistent one"
        )
    return card


def _vector(src: ReportSource, e: ExplainerResult) -> np.ndarray | None:
    """Importances over a common feature space: tabular columns, or image pixels."""
    if src.tokens is not None:  # text: scores of every token of the slice
        memmap = src.attributions(e) if e.scope == "local" else None
        if memmap is None or memmap.shape != src.tokens.ids.shape:
            return None
        return slice_scores(src.tokens, memmap)[1]
    arrays = src.ranking_arrays(e.id)
    if arrays is None:
        return None
    values = arrays[0]
    if src.view.pictures and e.scope == "global":
        pixels = grid_to_pixels(values, e.extra.get("features") or {}, pixel_shape(src))
        return None if pixels is None else pixels.ravel()
    if src.view.pictures:
        pixels = local_pixel_map(src, e, values)
        return None if pixels is None else pixels.ravel()
    return values


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their mean rank (``scipy.stats.rankdata``'s "average")."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    dense = np.cumsum(starts)
    bounds = np.r_[np.nonzero(starts)[0], x.size]
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = 0.5 * (bounds[dense] + bounds[dense - 1] + 1)
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (Spearman 1904): Pearson's correlation of the average
    ranks, as ``scipy.stats.spearmanr`` computes it (NaN when a value is NaN), without
    importing scipy.stats (about a second) to render a report."""
    if np.isnan(a).any() or np.isnan(b).any():
        return float("nan")
    return float(np.corrcoef(average_ranks(a), average_ranks(b))[1, 0])


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
            rho = spearman(vectors[a], vectors[b])
            row.append(None if not np.isfinite(rho) else float(rho))
        matrix.append(row)
    note = (
        "Spearman rank correlation of the slice-level importances (mean |attribution| for "
        "local explainers) over every feature: 1 means the same order, 0 no relation."
    )
    if src.view.pictures and any(e.scope == "global" for e in src.ok() if e.id in vectors):
        note += (
            " Global explainers rank grid cells; each pixel takes its cell's importance, so "
            "pixels of one cell are tied."
        )
    if src.tokens is not None:
        note = (
            "Spearman rank correlation of the explainers' scores of every distinct token of "
            "the slice (shrunk mean |attribution|: sum / (count + 5)): 1 means the same "
            "order, 0 no relation."
        )
    if excluded:
        note += f" Not comparable (other features or no stored ranking): {', '.join(excluded)}."
    return Agreement(
        labels=labels,
        matrix=matrix,
        cells=[[_heat(v) for v in row] for row in matrix],
        bar=ColourBar(css_gradient(True), ["−1", "0", "1"], "Spearman ρ: −1 … 0 … 1", 1.0, True),
        note=note,
        excluded=excluded,
    )


def _heat(value: float | None) -> HeatCell:
    colour = to_hex(value, 1.0, signed=True)
    return HeatCell("—" if value is None else f"{value:.2f}", colour, is_dark(colour))


def build(src: ReportSource) -> RankingsSection:
    k = src.options.top_k
    return RankingsSection(
        top_k=k,
        cards=[_card(src, e, k) for e in src.ok()],
        agreement=agreement(src),
        features_word=src.view.features_word,
    )


def draw(view: RankingsSection, src: ReportSource, canvas: Canvas) -> None:
    for card in view.cards:
        main, bar = card.map_tile, card.map_bar
        if main is not None and main.figure is not None and bar is not None:
            picture = map_picture(main.values, bar.limit, signed=bar.signed)
            canvas.array(main.figure.name, picture, MAIN_TILE)
        bar = card.class_bar
        if card.class_figure is not None and bar is not None:
            maps = [(t.title, t.values) for t in card.class_tiles]
            mosaic = map_mosaic(maps, bar.limit, signed=bar.signed, cols=CLASS_COLUMNS)
            canvas.array(card.class_figure.name, mosaic, mosaic.shape[1] / 2)


SECTION = Section("rankings", "Importance rankings", build, draw)
