"""The report's two colour maps: diverging for signed values, sequential for magnitudes.

Both are Paul Tol's colour-blind-safe schemes (https://personal.sron.nl/~pault/#sec:sequential):
``BuRd`` (blue - white - red, readable under deuteranopia, protanopia and tritanopia, and in
grey-scale print by lightness) and ``YlOrBr`` (light yellow to dark brown, lightness rising
monotonically). Attribution overlays, class maps, weight and coefficient charts all use these.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LinearSegmentedColormap, ListedColormap

#: Tol's BuRd: negative (blue) - zero (near white) - positive (red).
DIVERGING_COLOURS = (
    "#2166AC",
    "#4393C3",
    "#92C5DE",
    "#D1E5F0",
    "#F7F7F7",
    "#FDDBC7",
    "#F4A582",
    "#D6604D",
    "#B2182B",
)
#: Tol's YlOrBr: zero (light) to large (dark).
SEQUENTIAL_COLOURS = (
    "#FFFFE5",
    "#FFF7BC",
    "#FEE391",
    "#FEC44F",
    "#FB9A29",
    "#EC7014",
    "#CC4C02",
    "#993404",
    "#662506",
)
#: Ends of the diverging map, for signed bars drawn without a colour map (HTML/CSS bars).
NEGATIVE = DIVERGING_COLOURS[1]
POSITIVE = DIVERGING_COLOURS[7]
#: Neutral colours of the charts.
INK = "#1F2328"
MUTED = "#59636E"
ACCENT = "#4477AA"  # Tol's bright blue: bars of magnitudes

DIVERGING = LinearSegmentedColormap.from_list(
    "auditor_diverging", DIVERGING_COLOURS, N=256
).with_extremes(bad="#DDDDDD")
SEQUENTIAL = LinearSegmentedColormap.from_list(
    "auditor_sequential", SEQUENTIAL_COLOURS, N=256
).with_extremes(bad="#DDDDDD")


def colour_map(signed: bool) -> ListedColormap | LinearSegmentedColormap:
    """The diverging map for signed values, the sequential one for magnitudes."""
    return DIVERGING if signed else SEQUENTIAL


def to_rgb(values: np.ndarray, scale: float, *, signed: bool) -> np.ndarray:
    """Values -> ``(*shape, 3)`` float RGB in [0, 1] on a fixed scale (clipped at ``scale``).

    Signed values map ``[-scale, scale]`` onto the diverging map (0 is its middle);
    magnitudes map ``[0, scale]`` onto the sequential one.
    """
    scale = scale if scale > 0 else 1.0
    v = np.nan_to_num(np.asarray(values, dtype=np.float64)) / scale
    position = (np.clip(v, -1, 1) + 1) / 2 if signed else np.clip(v, 0, 1)
    return colour_map(signed)(position)[..., :3]


def css_gradient(signed: bool) -> str:
    """The colour map as a CSS ``linear-gradient`` (colour bars drawn in HTML)."""
    colours = DIVERGING_COLOURS if signed else SEQUENTIAL_COLOURS
    return "linear-gradient(to right, " + ", ".join(colours) + ")"


def to_hex(value: float | None, scale: float, *, signed: bool) -> str:
    """One value's colour as ``#rrggbb`` (``to_rgb``'s mapping); grey when missing."""
    if value is None or not np.isfinite(value):
        return "#DDDDDD"
    r, g, b = (round(255 * c) for c in to_rgb(np.array([value]), scale, signed=signed)[0])
    return f"#{r:02X}{g:02X}{b:02X}"


def is_dark(colour: str) -> bool:
    """Whether white text reads better than ink on ``#rrggbb`` (relative luminance)."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45
