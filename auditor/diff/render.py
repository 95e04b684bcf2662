"""Write a ``DiffResult`` as diff.json, diff.html and diff.pdf (every file atomically).

The page uses the report's templates environment and stylesheets
(``auditor.report.render``) plus ``templates/diff/diff.css``; diff.html loads nothing and
needs no JavaScript. diff.pdf is PDF/A-3b like report.pdf, with both runs' results.json
attached (``before-results.json``, ``after-results.json``) and fetched only from inside
their run folders, by the report's PDF writer (``auditor.report.pdf.write_pdf``).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from auditor.diff.compare import DiffResult
from auditor.diff.figures import changed_pictures
from auditor.report.common import STATUS_CLASS, VERDICT_WORD, fmt_num, fmt_value
from auditor.report.render import TEMPLATES, environment, stylesheet
from auditor.run_folder import atomic_write_bytes, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from auditor.report.pdf import PdfAttachment

DIFF_SCHEMA = 1
FORMATS = ("json", "html", "pdf")
#: What each attachment of diff.pdf is (name in the PDF: description).
ATTACHED = {
    "before-results.json": "results.json of the first run (RUN_A)",
    "after-results.json": "results.json of the second run (RUN_B)",
}
CHANGE_CLASS = {"pass -> fail": "fail", "error": "error", "fail -> pass": "pass", "same": "muted"}
ASSESSMENT_CLASS = {"better": "pass", "worse": "fail", "changed": "error"}


def diff_json(result: DiffResult) -> dict[str, Any]:
    """diff.json: the ``DiffResult`` as plain data (NaN becomes null when written)."""
    data = asdict(result)
    data = {"diff_schema": DIFF_SCHEMA, "verdict_changed": result.verdict_changed, **data}
    return data


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"
    return fmt_num(value, digits)


def _signed(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return ("+" if value > 0 else "") + fmt_num(value)


def _ci(ci: tuple[float | None, float | None]) -> str:
    if ci[0] is None or ci[1] is None:
        return "—"
    return f"[{fmt_num(ci[0])}, {fmt_num(ci[1])}]"


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


def _verdict(status: str) -> tuple[str, str]:
    return VERDICT_WORD.get(status, status.upper()), STATUS_CLASS.get(status, "muted")


def render_html(result: DiffResult, *, for_print: bool) -> str:
    env = environment()
    env.filters["num"] = _num
    env.filters["signed"] = _signed
    env.filters["ci"] = _ci
    env.filters["value"] = fmt_value
    env.filters["when"] = _when
    extra = (TEMPLATES / "diff" / "diff.css").read_text(encoding="utf-8")
    changed_checks = [c for c in result.checks if c.change != "same"]
    real = [m for m in result.metrics if m.assessment in ("better", "worse", "changed")]
    return env.get_template("diff/diff.html").render(
        d=result,
        css=stylesheet(for_print) + Markup("\n" + extra),
        for_print=for_print,
        verdict_before=_verdict(result.before.status),
        verdict_after=_verdict(result.after.status),
        status_class=STATUS_CLASS,
        change_class=CHANGE_CLASS,
        assessment_class=ASSESSMENT_CLASS,
        changed_checks=changed_checks,
        real_metric_changes=real,
        same_versions=[
            i for i in result.inputs if i.field.startswith("version: ") and not i.changed
        ],
        attached=list(ATTACHED),
        pictures=changed_pictures(result),
        rendered=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def attachments(result: DiffResult) -> list[PdfAttachment]:
    """What diff.pdf attaches: each run's results.json, read from inside its run folder."""
    from auditor.report.pdf import PdfAttachment  # weasyprint is slow to import

    return [
        PdfAttachment(
            Path(run.path), "results.json", name, f"{description}: {run.name}/{run.run_id}"
        )
        for (name, description), run in zip(
            ATTACHED.items(), (result.before, result.after), strict=True
        )
    ]


def write_diff(result: DiffResult, out: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write the requested files into ``out`` (created if needed); return their paths."""
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if "json" in formats:
        atomic_write_json(out / "diff.json", diff_json(result))
        written.append(out / "diff.json")
    if "html" in formats:
        atomic_write_text(out / "diff.html", render_html(result, for_print=False))
        written.append(out / "diff.html")
    if "pdf" in formats:
        from auditor.report.pdf import write_pdf  # weasyprint is slow to import

        pdf = write_pdf(out, render_html(result, for_print=True), attachments(result))
        atomic_write_bytes(out / "diff.pdf", pdf)
        written.append(out / "diff.pdf")
    return written
