"""Reports rendered from a run folder alone: report.html (self-contained) and report.pdf."""

from __future__ import annotations

from pathlib import Path

from auditor.report.render import render

__all__ = ["render", "Path"]
