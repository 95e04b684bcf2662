"""Section: Global surrogates: how faithfully a simple model mimics this one, and the
simple model itself (the decision tree drawn, the linear coefficients)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from auditor.report import figures, treeplot
from auditor.report.canvas import Canvas
from auditor.report.common import FigureRef, fmt_num, slug
from auditor.report.sections.base import Section, count_badge
from auditor.report.sections.rankings import global_names
from auditor.report.source import ReportSource
from auditor.results import ExplainerResult

FIDELITY_WORDS = {
    "accuracy": "held-out agreement with the model's predictions",
    "train_accuracy": "agreement on the training part",
    "r2": "held-out R² of the model's logit",
    "train_r2": "R² on the training part",
}


@dataclass(frozen=True)
class Coefficient:
    feature: str
    coefficient: str
    standardized: str
    value: float  # the standardized coefficient (drawn)


@dataclass
class SurrogateCard:
    id: str
    type: str
    kind: str  # tree | linear | other
    fidelity: list[tuple[str, str, str]]  # (name, value, meaning)
    facts: list[tuple[str, str]]
    tree_figure: FigureRef | None = None
    tree_text: str = ""
    tree_note: str = ""
    coefficients: list[Coefficient] = field(default_factory=list)
    coefficients_figure: FigureRef | None = None
    tree: dict[str, Any] | None = field(default=None, repr=False)
    draw_depth: int = 0


@dataclass
class SurrogatesSection:
    cards: list[SurrogateCard]
    note: str


def _feature_names(src: ReportSource, e: ExplainerResult, n: int) -> list[str]:
    names = global_names(src, e, n)
    return names if len(names) == n else [f"x{i}" for i in range(n)]


def _tree(src: ReportSource, e: ExplainerResult, card: SurrogateCard) -> None:
    tree = e.extra.get("tree")
    if not isinstance(tree, dict) or not tree.get("children_left"):
        return
    card.kind = "tree"
    card.tree = tree
    depth = treeplot.tree_depth(tree)
    card.draw_depth = treeplot.drawing_depth(tree)
    card.tree_figure = FigureRef(f"surrogates/{slug(e.id)}-tree.png", f"Decision tree of {e.id}")
    card.tree_text = str(e.extra.get("text") or "")
    card.tree_note = (
        f"The first {card.draw_depth} of {depth} levels are drawn; dashed boxes stand for the "
        "subtrees below (the whole tree is given as text). "
        if depth > card.draw_depth
        else ""
    )
    card.tree_note += (
        "A sample goes left (yes) when its feature value is at most the threshold; leaves "
        "give the majority class, its share and the number of training samples."
    )


def _linear(src: ReportSource, e: ExplainerResult, card: SurrogateCard, top_k: int) -> None:
    coef = e.extra.get("coefficients")
    if not isinstance(coef, list) or not coef:
        return
    card.kind = "linear"
    raw = np.asarray(coef, dtype=np.float64).ravel()
    std = np.asarray(e.extra.get("standardized_coefficients") or raw, dtype=np.float64).ravel()
    names = _feature_names(src, e, raw.size)
    order = np.argsort(-np.abs(std), kind="stable")[:top_k]
    card.coefficients = [
        Coefficient(names[i], fmt_num(float(raw[i])), fmt_num(float(std[i])), float(std[i]))
        for i in order
    ]
    card.coefficients_figure = FigureRef(
        f"surrogates/{slug(e.id)}-coefficients.png",
        f"Standardized coefficients of {e.id}",
        "Standardized coefficients (coefficient × feature std): the change of the regressed "
        "logit for a one-std change of the feature. Red raises it, blue lowers it.",
    )


def _card(src: ReportSource, e: ExplainerResult) -> SurrogateCard:
    fidelity = [(k, fmt_num(v), FIDELITY_WORDS.get(k, "")) for k, v in e.fidelity.items()]
    facts = []
    for key, label in (
        ("depth", "Depth"),
        ("leaves", "Leaves"),
        ("n_estimators", "Trees"),
        ("n_train", "Training samples"),
        ("n_test", "Held-out samples"),
        ("output", "Regressed output"),
        ("intercept", "Intercept"),
    ):
        if key in e.extra:
            value = e.extra[key]
            facts.append((label, fmt_num(value) if isinstance(value, int | float) else str(value)))
    card = SurrogateCard(e.id, e.type, "other", fidelity, facts)
    _tree(src, e, card)
    _linear(src, e, card, src.options.top_k)
    return card


def build(src: ReportSource) -> SurrogatesSection:
    cards = [
        _card(src, e)
        for e in src.ok("global")
        if e.fidelity or "tree" in e.extra or "coefficients" in e.extra
    ]
    note = (
        "A surrogate is a simple model fitted to this model's own outputs on the slice; "
        "fidelity says how well it mimics the model on samples it was not fitted to. "
        "Read a surrogate's explanation only as far as its fidelity allows."
    )
    if not cards:
        note = (
            "No global surrogate ran in this audit (add surrogate_tree, surrogate_linear or "
            "surrogate_forest to the spec's explainers)."
        )
    return SurrogatesSection(cards, note)


def draw(view: SurrogatesSection, src: ReportSource, canvas: Canvas) -> None:
    for card in view.cards:
        if card.tree_figure and card.tree:
            canvas.figure(card.tree_figure.name, treeplot.draw_tree(card.tree, card.draw_depth))
        if card.coefficients_figure and card.coefficients:
            fig = figures.signed_bars(
                [c.feature for c in card.coefficients],
                [c.value for c in card.coefficients],
                "standardized coefficient",
            )
            canvas.figure(card.coefficients_figure.name, fig)


SECTION = Section("surrogates", "Global surrogates", build, draw, count_badge(lambda s: s.cards))
