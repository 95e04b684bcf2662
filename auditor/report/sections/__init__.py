"""One module per report section: ``build(src)`` makes its view (plain data, tested without
rendering) and, where the section has figures, ``draw(view, src, canvas)`` writes them.

``SECTIONS`` is the one list of sections, in report order: adding a section is a module
with ``SECTION = Section(...)``, its template ``templates/sections/<id>.html`` and an entry
here. The contents (nav) are numbered from this list.
"""

from __future__ import annotations

from auditor.report.sections import (
    appendix,
    changes,
    data,
    failures,
    gallery,
    layers,
    model,
    quality,
    rankings,
    summary,
    surrogates,
    tokens,
    trend,
)
from auditor.report.sections.base import Section

SECTIONS: list[Section] = [
    summary.SECTION,
    trend.SECTION,  # only with two or more runs of the audit in its index
    changes.SECTION,  # only for a run compared with a baseline run (spec's baseline:)
    model.SECTION,
    layers.SECTION,  # the Model section's second part (included by model.html)
    data.SECTION,
    rankings.SECTION,
    gallery.SECTION,
    tokens.SECTION,  # text only
    surrogates.SECTION,
    quality.SECTION,
    failures.SECTION,
    appendix.SECTION,
]

__all__ = ["SECTIONS", "Section"]
