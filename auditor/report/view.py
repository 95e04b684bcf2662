"""The view model: everything the report shows, built from the run folder alone.

``build_view`` makes plain data (strings, numbers, figure references) for each section of
``auditor.report.sections.SECTIONS`` in report order, numbering the contents from that list;
templates only lay it out (``v.<section id>``), and tests read it without rendering.
``draw`` writes the figures the view refers to. A section whose ``build`` returns None has
nothing to show for this run (the trend of an audit with one run) and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from auditor.report.canvas import Canvas
from auditor.report.modalities import view_for
from auditor.report.sections import SECTIONS, Section, summary
from auditor.report.sections.appendix import ATTACHMENTS
from auditor.report.source import ReportSource
from auditor.run_folder import RunFolder

__all__ = ["ATTACHMENTS", "Meta", "NavItem", "View", "build_view", "draw", "open_view"]


@dataclass(frozen=True)
class NavItem:
    id: str
    number: int
    title: str
    badge: str = ""  # a count or status shown next to the link
    badge_class: str = ""


@dataclass(frozen=True)
class Meta:
    title: str
    name: str
    run_id: str
    description: str
    date: str  # the run's start, "2026-11-27 14:10 UTC"
    verdict: str
    verdict_class: str
    header: str  # running header of PDF pages


@dataclass
class View:
    """The report's data: ``meta``, the contents, and each shown section's view by id
    (``view.gallery``, ``view.rankings``, ...)."""

    meta: Meta
    nav: list[NavItem]
    sections: list[Section]  # shown, in report order (parts included)
    parts: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        parts = self.__dict__.get("parts") or {}
        if name in parts:
            return parts[name]
        raise AttributeError(f"the report has no section {name!r}")

    def item(self, section_id: str) -> NavItem:
        """The contents entry of a section (its number and title, for its heading)."""
        return next(n for n in self.nav if n.id == section_id)

    @property
    def templates(self) -> list[str]:
        """The templates the page includes in order (parts are included by their section)."""
        return [s.template for s in self.sections if s.nav]


def _date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def shown_sections(src: ReportSource) -> list[Section]:
    """The registered sections this report shows (optional ones where the modality asks)."""
    modality = view_for(src.modality)
    return [s for s in SECTIONS if not s.optional or modality.shows(s.id)]


def build_view(src: ReportSource) -> View:
    """Every section's view, in report order."""
    r = src.results
    date = _date(r.provenance.started)
    verdict_word, verdict_class = summary.verdict_of(r)
    meta = Meta(
        title=r.title,
        name=r.name,
        run_id=r.run_id,
        description=r.description,
        date=date,
        verdict=verdict_word,
        verdict_class=verdict_class,
        header=f"{r.name} · run {r.run_id} · {date}",
    )
    sections = shown_sections(src)
    parts = {s.id: s.build(src) for s in sections}
    sections = [s for s in sections if parts[s.id] is not None]  # e.g. no trend: 1 run
    nav = []
    for s in (s for s in sections if s.nav):
        badge, badge_class = s.badge(parts[s.id])
        nav.append(NavItem(s.id, len(nav) + 1, s.title, badge, badge_class))
    return View(meta=meta, nav=nav, sections=sections, parts=parts)


def open_view(folder: RunFolder) -> tuple[View, ReportSource]:
    src = ReportSource.open(folder)
    return build_view(src), src


def draw(view: View, src: ReportSource, canvas: Canvas) -> None:
    """Write every figure the view refers to into ``figures/``."""
    for s in view.sections:
        if s.draw is not None:
            s.draw(view.parts[s.id], src, canvas)
