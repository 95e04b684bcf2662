"""Small pieces every report section uses: figure references and number formatting."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

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


def fmt_value(value: Any) -> str:
    """A check's value: a number, or a list of features (shortened)."""
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value[:10])
        return shown + (f", … ({len(value)} in all)" if len(value) > 10 else "")
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
