"""Reports rendered from a run folder alone: report.html (self-contained) and report.pdf.

``render(folder, formats)`` is the entry point (``auditor run`` and ``auditor render``).
"""

from __future__ import annotations

from auditor.report.render import render

__all__ = ["render"]
