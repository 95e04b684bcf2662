"""'Did you mean' suggestions for unknown names, and lists of names in messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like ``name``, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` Did you mean: x?`` or an empty string."""
    match = closest(name, known)
    return f" Did you mean: {match}?" if match else ""


def join_names(names: Iterable[object], limit: int | None = None) -> str:
    """Names as one text, the first ``limit`` of them and a count: separated by ``; `` when
    a name holds a comma (image regions are named ``rows 0-7, cols 8-15``), else ``, ``."""
    texts = [str(n) for n in names]
    separator = "; " if any("," in t for t in texts) else ", "
    shown = separator.join(texts if limit is None else texts[:limit])
    if limit is not None and len(texts) > limit:
        shown += f"{separator}... ({len(texts)} in all)"
    return shown
