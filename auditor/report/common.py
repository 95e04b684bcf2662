"""Small pieces every report section uses: figure references and number formatting."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from auditor.suggest import join_names

STATUS_CLASS = {
    "passed": "pass",
    "pass": "pass",
    "ok": "pass",
    "failed": "fail",
    "fail": "fail",
    "error": "error",
    "skipped": "muted",
    "not applicable": "muted",
}
VERDICT_WORD = {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}


@dataclass(frozen=True)
class FigureRef:
    """A figure a section shows: its file under ``figures/`` and its words."""

    name: str  # path under figures/, e.g. "rankings/saliency.png"
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class ColourBar:
    """A colour scale drawn in HTML: the CSS gradient, tick labels under it, its meaning."""

    gradient: str
    ticks: list[str]
    range_text: str
    limit: float = 1.0  # the end of the scale: [0, limit], or [-limit, limit] when signed
    signed: bool = False


@dataclass(frozen=True)
class Bar:
    """A horizontal bar drawn in HTML, in percent of its track: the filled part from
    ``left`` over ``width``, an optional whisker (spread) and the zero line of signed bars."""

    left: float
    width: float
    whisker_left: float = 0.0
    whisker_width: float = 0.0
    zero: float | None = None


def bars(values: list[float], spreads: list[float | None] | None = None) -> list[Bar]:
    """Bars of ``values`` on one scale (the largest reach fills the track); whiskers from
    each value to value + spread. With a negative value, zero sits in the middle."""
    values = [v if math.isfinite(v) else 0.0 for v in values]
    spread = [s if s and math.isfinite(s) else 0.0 for s in spreads or [0.0] * len(values)]
    reach = max((max(abs(v), abs(v + s)) for v, s in zip(values, spread, strict=True)), default=0)
    reach = reach if reach > 0 and math.isfinite(reach) else 1.0
    signed = any(v < 0 for v in values)
    origin, span = (50.0, 50.0) if signed else (0.0, 100.0)

    def at(x: float) -> float:
        return min(100.0, max(0.0, origin + span * x / reach))

    out = []
    for v, s in zip(values, spread, strict=True):
        low, high = sorted((at(v), at(0.0)))
        end = at(v + s)
        out.append(
            Bar(
                left=round(low, 1),
                width=round(high - low, 1),
                whisker_left=round(min(at(v), end), 1),
                whisker_width=round(abs(end - at(v)), 1),
                zero=origin if signed else None,
            )
        )
    return out


def slug(text: str) -> str:
    """A safe file-name and HTML-id part (ids and types are already safe; be sure anyway)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "x"


def fmt_num(value: Any, digits: int = 4) -> str:
    """Numbers for tables: thousands separators for ints, ``digits`` significant for floats."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}g}"
    return str(value)


#: A sha256 in hex, as the hash checks (model_unchanged, data_unchanged) store their value.
SHA256 = re.compile(r"[0-9a-f]{64}")
#: Characters of a sha256 shown in tables (the reasons say which hashes differ).
SHORT_SHA = 12


def short_sha(value: Any) -> Any:
    """A sha256 cut to its first ``SHORT_SHA`` characters and "…"; anything else as it is."""
    if isinstance(value, str) and SHA256.fullmatch(value):
        return value[:SHORT_SHA] + "…"
    return value


def fmt_value(value: Any) -> str:
    """A check's value: a number, or a list of features (shortened)."""
    if isinstance(value, list):
        return join_names(value, 10)
    return fmt_num(value)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def fmt_shape(shape: list[int] | None, batch: bool = True) -> str:
    """``[1, 32, 4, 4]`` -> ``32 × 4 × 4`` (the batch of one dropped)."""
    if not shape:
        return "—"
    dims = shape[1:] if batch and len(shape) > 1 else shape
    return " × ".join(str(d) for d in dims)
