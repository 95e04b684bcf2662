"""What a report section is: an id, a title, how its view is built and its figures drawn.

Each section module defines ``SECTION = Section(...)`` beside its ``build`` (and ``draw``)
and has one template, ``templates/sections/<id>.html``; ``auditor.report.sections.SECTIONS``
lists them in report order, and the contents (nav) are numbered from that list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.report.canvas import Canvas
    from auditor.report.source import ReportSource


def no_badge(view: Any) -> tuple[str, str]:
    return "", ""


def count_badge(items: Callable[[Any], list[Any]]) -> Callable[[Any], tuple[str, str]]:
    """A badge showing how many ``items(view)`` there are (none: no badge)."""

    def badge(view: Any) -> tuple[str, str]:
        n = len(items(view))
        return (str(n) if n else "", "")

    return badge


@dataclass(frozen=True)
class Section:
    """One section of the report."""

    id: str  # the HTML id, and the view's attribute name (``v.<id>`` in templates)
    title: str
    build: Callable[[ReportSource], Any]
    draw: Callable[[Any, ReportSource, Canvas], None] | None = None
    #: The contents' pill next to the link: (text, CSS class); ("", "") for none.
    badge: Callable[[Any], tuple[str, str]] = no_badge
    #: False: a part of the section before it (its template includes this one's), with
    #: no entry in the contents and no template of its own in the page's sequence.
    nav: bool = True
    #: Shown only where the data's modality asks for it (``ReportModality.shows``).
    optional: bool = False

    @property
    def template(self) -> str:
        return f"sections/{self.id}.html"
