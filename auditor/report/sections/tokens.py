"""Section: Top tokens per class (text): which tokens push each class, per explainer.

From ``rankings/<id>.tokens.json`` (written by the runner): for each class, the tokens
with the highest score over the samples explained for that class, with their SIGNED mean
attribution towards the class (red bars raise it, blue lower it) and how often they occur.
The score is the shrunk mean |attribution|, sum / (count + 5), so a token seen once with a
large value does not outrank a frequent, consistent one. Only text runs show this section
(``ReportModality.shows``).
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.report.common import fmt_num
from auditor.report.sections.base import Section, count_badge
from auditor.report.source import ReportSource
from auditor.report.tokens import TokenScore

PER_CLASS = 15  # tokens listed per class (the runner stores the top 15)


@dataclass(frozen=True)
class TokenBar:
    token: str
    mean: str
    count: int
    score: str
    positive: bool
    width: float  # percent of half the track: |mean| / the largest |mean| of the explainer


@dataclass(frozen=True)
class ClassTokens:
    name: str
    tokens: list[TokenBar]


@dataclass(frozen=True)
class ExplainerTokens:
    id: str
    type: str
    classes: list[ClassTokens]


@dataclass(frozen=True)
class TokensSection:
    note: str
    cards: list[ExplainerTokens]


def _bars(top: list[TokenScore], reach: float) -> list[TokenBar]:
    return [
        TokenBar(
            token=t.token,
            mean=fmt_num(t.mean, 3),
            count=t.count,
            score=fmt_num(t.score, 3),
            positive=t.mean >= 0,
            width=round(min(abs(t.mean) / reach, 1.0) * 100, 1),
        )
        for t in top
    ]


def build(src: ReportSource) -> TokensSection:
    cards = []
    for e in src.ok("local"):
        ranked = src.token_rankings(e.id)
        if ranked is None or not ranked.by_class:
            continue
        # classes in the data's order; names the data does not know (old runs) last
        known = [c for c in src.class_names if c in ranked.by_class]
        names = known + [c for c in ranked.by_class if c not in known]
        tops = {c: ranked.by_class[c][:PER_CLASS] for c in names}
        reach = max((abs(t.mean) for top in tops.values() for t in top), default=0.0)
        reach = reach if reach > 0 else 1.0
        classes = [ClassTokens(c, _bars(tops[c], reach)) for c in names if tops[c]]
        cards.append(ExplainerTokens(e.id, e.type, classes))
    note = (
        "For each class, the tokens with the highest score over the samples explained for "
        "that class (score: shrunk mean |attribution|, sum / (count + 5)). Bars: the signed "
        "mean attribution towards the class, on one scale per explainer (red raises the "
        "class, blue lowers it); n: occurrences in those samples."
    )
    if not cards:
        note = "No local explainer stored token rankings (rankings/<id>.tokens.json)."
    return TokensSection(note, cards)


SECTION = Section(
    "tokens",
    "Top tokens per class",
    build,
    badge=count_badge(lambda t: t.cards),
    optional=True,
)
