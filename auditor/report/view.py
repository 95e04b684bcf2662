"""The view model: everything the report shows, built from the run folder alone.

``build_view`` makes plain data (strings, numbers, figure references) for each section in
report order; templates only lay it out, and tests read it without rendering. ``draw``
writes the figures the view refers to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from auditor.report.canvas import Canvas
from auditor.report.sections import (
    appendix,
    data,
    failures,
    gallery,
    layers,
    model,
    quality,
    rankings,
    summary,
    surrogates,
)
from auditor.report.source import ReportSource
from auditor.run_folder import RunFolder

ATTACHMENTS = ("results.json", "spec.yaml")


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
    meta: Meta
    nav: list[NavItem]
    summary: summary.Summary
    model: model.ModelSection
    layers: layers.LayersSection  # the Model section's second part
    data: data.DataSection
    rankings: rankings.RankingsSection
    gallery: gallery.GallerySection
    surrogates: surrogates.SurrogatesSection
    quality: quality.QualitySection
    failures: failures.FailuresSection
    appendix: appendix.AppendixSection


def _date(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


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
    s = summary.build(src)
    f = failures.build(src)
    g = gallery.build(src)
    q = quality.build(src)
    sur = surrogates.build(src)
    nav = [
        NavItem("summary", 1, "Summary", s.verdict, s.verdict_class),
        NavItem("model", 2, "Model"),
        NavItem("data", 3, "Data slice"),
        NavItem("rankings", 4, "Importance rankings"),
        NavItem("gallery", 5, "Saliency galleries", str(len(g.rows)) if g.rows else ""),
        NavItem("surrogates", 6, "Global surrogates", str(len(sur.cards)) if sur.cards else ""),
        NavItem("quality", 7, "Explanation quality", str(len(q.rows)) if q.rows else ""),
        NavItem(
            "failures",
            8,
            "Failures",
            str(len(f.items)) if f.items else "",
            "fail" if f.items else "",
        ),
        NavItem("appendix", 9, "Appendix"),
    ]
    return View(
        meta=meta,
        nav=nav,
        summary=s,
        model=model.build(src),
        layers=layers.build(src),
        data=data.build(src),
        rankings=rankings.build(src),
        gallery=g,
        surrogates=sur,
        quality=q,
        failures=f,
        appendix=appendix.build(src, list(ATTACHMENTS)),
    )


def open_view(folder: RunFolder) -> tuple[View, ReportSource]:
    src = ReportSource.open(folder)
    return build_view(src), src


def draw(view: View, src: ReportSource, canvas: Canvas) -> None:
    """Write every figure the view refers to into ``figures/``."""
    model.draw(view.model, src, canvas)
    layers.draw(view.layers, src, canvas)
    data.draw(view.data, src, canvas)
    rankings.draw(view.rankings, src, canvas)
    gallery.draw(view.gallery, src, canvas)
    surrogates.draw(view.surrogates, src, canvas)
    quality.draw(view.quality, src, canvas)
