""" "What drives this model": the features the trusted explainers agree on.

Each trusted explainer (``auditor.report.trust``) contributes its top ``k`` features over the
slice (its stored ranking: mean |attribution| per feature, or per image region; for text,
its top tokens). A feature counts as a driver when it is in the top ``k`` of at least two
of them (of the only one, when one explainer is trusted); drivers are ordered by how many
agree, then by their mean rank. An explainer whose top ``k`` is one tie is left out (its
top ``k`` would be an arbitrary pick). Image features named ``r<row>c<col>`` are also
placed in words ("upper left", "centre") for a reader who will not read the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from auditor.explainers.ranking import tied_top
from auditor.report.source import ReportSource
from auditor.report.trust import Assessment
from auditor.suggest import join_names

_CELL = re.compile(r"^(?:ch(\d+)_)?r(\d+)c(\d+)$")


@dataclass(frozen=True)
class Driver:
    """A feature in the top ``k`` of several trusted explainers."""

    name: str  # as ranked: "r3c4", "mean radius", "great"
    words: str  # "row 3, column 4" for image cells, else the name
    agree: int  # trusted explainers with it in their top k
    of: int  # trusted explainers compared
    explainers: list[str]
    mean_rank: float  # over the explainers that agree (1 = first)


@dataclass
class Drivers:
    k: int
    features: list[Driver]
    sentence: str
    compared: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # "gradcam (its top 10 is one tie)"


def top_features(src: ReportSource, a: Assessment, k: int) -> tuple[list[str], str]:
    """An explainer's top ``k`` feature names, or none and why."""
    if src.tokens is not None or src.modality == "text":
        ranked = src.token_rankings(a.id)
        if ranked is None or not ranked.overall:
            return [], "no token ranking stored"
        return [t.token for t in ranked.overall[:k]], ""
    # here, not at the top: the sections package imports this module (summary)
    from auditor.report.sections.rankings import feature_names_of

    arrays = src.ranking_arrays(a.id)
    result = src.results.explainers[a.id]
    if arrays is not None:
        importance = np.nan_to_num(arrays[0], nan=-np.inf)
        names = feature_names_of(src, result, importance.size)
        if names is not None:
            if tied_top(arrays[0], k):
                return [], f"its top {k} is one tie"
            order = np.argsort(-importance, kind="stable")[:k]
            return [names[i] for i in order], ""
    if result.ranking:  # only the top of the ranking kept in results.json
        return [r.feature for r in result.ranking[:k]], ""
    return [], "no ranking stored"


def cell_words(name: str) -> str:
    """``r3c4`` -> ``row 3, column 4`` (``ch1_r3c4`` -> ``channel 1, row 3, column 4``)."""
    found = _CELL.match(name)
    if not found:
        return name
    channel, row, col = found.groups()
    where = f"row {row}, column {col}"
    return f"channel {channel}, {where}" if channel is not None else where


def place(names: list[str], all_names: list[str]) -> str:
    """Where image cells lie, in words ("the centre", "the upper left"), or "" when the
    names are not image cells or spread over most of the image."""
    cells = [_CELL.match(n) for n in all_names]
    if not names or not cells or not all(cells):
        return ""
    rows = max(int(c.group(2)) for c in cells if c) + 1
    cols = max(int(c.group(3)) for c in cells if c) + 1
    picked = [_CELL.match(n) for n in names]
    r = np.array([int(c.group(2)) for c in picked if c], dtype=np.float64)
    c = np.array([int(m.group(3)) for m in picked if m], dtype=np.float64)
    if r.size == 0 or rows < 3 or cols < 3:
        return ""
    if np.ptp(r) + 1 > 0.8 * rows and np.ptp(c) + 1 > 0.8 * cols:
        return "spread over the whole image"
    vertical = ("upper", "middle", "lower")[min(2, int(3 * (r.mean() + 0.5) / rows))]
    horizontal = ("left", "centre", "right")[min(2, int(3 * (c.mean() + 0.5) / cols))]
    if vertical == "middle" and horizontal == "centre":
        return "in the centre of the image"
    if vertical == "middle":
        return f"on the {horizontal} of the image"
    if horizontal == "centre":
        return f"in the {vertical} middle of the image"
    return f"in the {vertical} {horizontal} of the image"


def drivers(src: ReportSource, assessments: list[Assessment]) -> Drivers:
    """The features the trusted explainers agree on, with a sentence saying so."""
    k = src.options.top_k
    tops: dict[str, list[str]] = {}
    left_out = []
    for a in assessments:
        if not a.trusted:
            continue
        names, why = top_features(src, a, k)
        if names:
            tops[a.id] = names
        else:
            left_out.append(f"{a.id} ({why})")
    if not tops:
        return Drivers(k, [], "No trusted explainer has a ranking to compare.", [], left_out)
    need = 2 if len(tops) >= 2 else 1
    seen: dict[str, list[tuple[str, int]]] = {}
    for owner, names in tops.items():
        for rank, name in enumerate(names, 1):
            seen.setdefault(name, []).append((owner, rank))
    found = [
        Driver(
            name,
            cell_words(name),
            len(hits),
            len(tops),
            [owner for owner, _ in hits],
            float(np.mean([rank for _, rank in hits])),
        )
        for name, hits in seen.items()
        if len(hits) >= need
    ]
    found.sort(key=lambda d: (-d.agree, d.mean_rank))
    found = found[:k]
    return Drivers(k, found, _sentence(src, found, list(tops), k), list(tops), left_out)


def _sentence(src: ReportSource, found: list[Driver], compared: list[str], k: int) -> str:
    unit = _unit(src)
    if not found:
        return (
            f"The trusted explainers ({join_names(compared, 6)}) share no {unit} in their top "
            f"{k}: they do not agree on what drives this model on this slice."
        )
    n = len(found)
    where = place([d.name for d in found], _all_names(src))
    things = f"{n} {unit}{'s' if n > 1 else ''}" + (f" {where}" if where else "")
    if len(compared) == 1:
        lead = (
            f"Only one explainer is trusted ({compared[0]}); by it, the model's predictions on "
            f"this slice rest most on these {things}"
        )
    else:
        lead = (
            f"The {len(compared)} trusted explainers ({join_names(compared, 6)}) agree that "
            f"the model's predictions on this slice rest most on these {things} (in brackets: "
            f"how many of them rank it in their top {k})"
        )
    shown = ", ".join(
        f"{d.words} ({d.agree} of {d.of})" if d.of > 1 else d.words for d in found[:6]
    )
    more = f" and {len(found) - 6} more" if len(found) > 6 else ""
    if any(_CELL.match(d.name) for d in found):
        more += " (rows and columns counted from 0 at the top left)"
    return f"{lead}: {shown}{more}."


def _unit(src: ReportSource) -> str:
    if src.modality == "text":
        return "token"
    if src.modality == "image":
        return "region" if src.view.ranks_regions(src.results.data.input_shape) else "pixel"
    return "feature"


def _all_names(src: ReportSource) -> list[str]:
    return list(src.local_names or [])
