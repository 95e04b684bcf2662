"""Section: Model, second part: the layers on the audited data.

From ``model.layer_stats`` (results.json) a table of every leaf layer's outputs on the
slice; from ``layers.npz`` (image models) the gallery samples' most active feature maps of
the Grad-CAM layer (or ``report.model.activations``) beside each input, and the first
convolution's filters. Pictures are composed with PIL from arrays: no matplotlib figure,
so the section adds little to the render time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from matplotlib import get_data_path
from PIL import Image, ImageDraw, ImageFont

from auditor.report.canvas import Canvas
from auditor.report.colormaps import INK
from auditor.report.common import FigureRef, fmt_num
from auditor.report.overlay import input_picture, map_mosaic, map_picture
from auditor.report.sections.base import Section
from auditor.report.source import ReportSource

MAX_SAMPLES = 6  # gallery samples whose feature maps are drawn (one page per layer)
MAX_DEAD = 0.5  # the dead_units warning's rule (auditor.health.MAX_DEAD)
TILE = 72  # pixels per picture in the feature-map figures
GAP = 8
TITLE = 13  # caption font size in pixels
IG_NOTE = (
    "The share of each layer's gradient in the Integrated Gradients attributions is not "
    "computed: it would need a second pass of every IG step with hooks on each layer."
)


@dataclass(frozen=True)
class LayerStatRow:
    name: str
    type: str
    units: str
    mean: str
    std: str
    dead: str  # "56%" of units never > 0 on the slice
    dead_class: str  # "fail" for a rectifier over MAX_DEAD, "" otherwise
    weight_norm: str


@dataclass(frozen=True)
class LayersSection:
    rows: list[LayerStatRow]
    note: str  # why there is no table (TorchScript, an older run), "" when there is one
    maps: list[FigureRef]  # one figure per feature-map layer
    maps_layers: list[str]
    filters: FigureRef | None
    ig_note: str = IG_NOTE


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _num(value: float | None, empty: str = "—") -> str:
    return empty if value is None else fmt_num(value)


def _rows(raw: list[dict]) -> list[LayerStatRow]:
    rows = []
    for r in raw:
        dead, units = r.get("dead_fraction"), r.get("units")
        dead_layer = bool(r.get("rectifier")) and dead is not None and dead > MAX_DEAD
        rows.append(
            LayerStatRow(
                name=str(r.get("name", "")),
                type=str(r.get("type", "")),
                units=str(units) if units is not None else "—",
                mean=_num(r.get("mean")),
                std=_num(r.get("std")),
                dead=_pct(dead),
                dead_class="fail" if dead_layer else "",
                weight_norm=_num(r.get("weight_norm"), ""),
            )
        )
    return rows


def _npz(src: ReportSource) -> dict[str, np.ndarray]:
    path = src.folder.file("layers.npz")
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {name: np.asarray(data[name]) for name in data.files}


def build(src: ReportSource) -> LayersSection:
    model = src.results.model
    raw = model.get("layer_stats")
    if raw is None:
        note = str(
            model.get("layer_stats_note")
            or "Layer statistics were not recorded by the auditor version that made this run."
        )
        rows: list[LayerStatRow] = []
    else:
        note, rows = "", _rows(list(raw))
    stored = _npz(src)
    layers = [str(n) for n in stored.get("layers", np.zeros(0, str))]
    n = min(MAX_SAMPLES, len(src.gallery))
    maps = [
        FigureRef(
            name=f"model/activations-{i + 1}.png",
            alt=f"Feature maps of {layer} for {n} gallery samples",
            caption=f"{layer}: the {stored[f'maps_{i}'].shape[1]} most active channels (highest "
            f"mean activation, channel numbers above) beside each of the first {n} gallery "
            "samples (true → predicted class); each map on its own scale, from its minimum "
            "to its maximum.",
        )
        for i, layer in enumerate(layers)
        if n and f"maps_{i}" in stored
    ]
    filters = None
    if "filters" in stored:
        f = stored["filters"]
        averaged = " (averaged over its input channels)" if f.shape[1] > 1 else ""
        filters = FigureRef(
            name="model/filters.png",
            alt=f"The {len(f)} filters of {stored['filters_layer']}",
            caption=f"The first convolution, {stored['filters_layer']}: its {len(f)} "
            f"{f.shape[2]}×{f.shape[3]} filters{averaged}; red positive, blue negative weights.",
        )
    return LayersSection(rows, note, maps, layers, filters)


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(Path(get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf", size)


def _tile(picture: np.ndarray) -> Image.Image:
    image = Image.fromarray(picture)
    h, w = picture.shape[:2]
    filter_ = Image.Resampling.NEAREST if w <= TILE else Image.Resampling.BOX
    return image.resize((TILE, max(1, round(TILE * h / w))), filter_)


def maps_picture(
    inputs: np.ndarray, maps: np.ndarray, channels: np.ndarray, titles: list[str]
) -> np.ndarray:
    """Rows of samples: the input (titled), then its ``k`` maps titled ``ch c``."""
    n, k, h, w = maps.shape
    height = round(TILE * h / w)
    band = round(TITLE * 1.5)
    row = band + height + GAP
    picture = Image.new("RGB", ((k + 1) * (TILE + GAP) + GAP, n * row), "white")
    draw = ImageDraw.Draw(picture)
    for s in range(n):
        y = s * row
        picture.paste(_tile(input_picture(inputs[s])), (0, y + band))
        text = titles[s]
        while len(text) > 2 and _font(TITLE).getlength(text) > TILE + GAP:
            text = text[:-2] + "…"
        draw.text((TILE / 2, y + band - 3), text, fill=INK, font=_font(TITLE), anchor="ms")
        for j in range(k):
            values = maps[s, j].astype(np.float64)
            low, high = float(values.min()), float(values.max())
            scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
            x = (j + 1) * (TILE + GAP) + GAP
            picture.paste(_tile(map_picture(scaled, 1.0, signed=False)), (x, y + band))
            draw.text(
                (x + TILE / 2, y + band - 3),
                f"ch {int(channels[s, j])}",
                fill=INK,
                font=_font(TITLE),
                anchor="ms",
            )
    return np.asarray(picture)


def draw(view: LayersSection, src: ReportSource, canvas: Canvas) -> None:
    if not view.maps and view.filters is None:
        return
    stored = _npz(src)
    g = src.gallery
    n = min(MAX_SAMPLES, len(g))
    titles = [
        f"{src.class_name(int(g.labels[s]))} → {src.class_name(int(g.predicted[s]))}"
        for s in range(n)
    ]
    for i, ref in enumerate(view.maps):
        maps, channels = stored[f"maps_{i}"][:n], stored[f"channels_{i}"][:n]
        picture = maps_picture(g.inputs[:n], maps, channels, titles)
        canvas.array(ref.name, picture, display_width=picture.shape[1] * 0.75)
    if view.filters is not None:
        f = stored["filters"].astype(np.float64).mean(axis=1)  # (out, kh, kw)
        scale = float(np.abs(f).max()) or 1.0
        tiles = [(str(i), f[i]) for i in range(len(f))]
        picture = map_mosaic(tiles, scale, signed=True, cols=16, tile=40, title=12, gap=6)
        canvas.array(view.filters.name, picture, display_width=min(picture.shape[1] * 0.75, 640))


SECTION = Section("layers", "Layers on the audited data", build, draw, nav=False)
