"""Section: Summary: the verdict and why, the checks, the headline numbers."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.report.common import (
    STATUS_CLASS,
    VERDICT_WORD,
    fmt_num,
    fmt_seconds,
    fmt_value,
)
from auditor.report.sections.base import Section
from auditor.report.source import ReportSource
from auditor.results import Results


@dataclass(frozen=True)
class CheckRow:
    name: str
    kind: str
    value: str
    threshold: str
    status: str  # PASS | FAIL | ERROR
    status_class: str
    severity: str
    reason: str


@dataclass(frozen=True)
class ExplainerRow:
    id: str
    type: str
    scope: str
    status: str
    status_class: str
    seconds: str
    per_sample: str
    note: str


@dataclass(frozen=True)
class WarningRow:
    """A health warning as the summary shows it."""

    code: str
    subject: str
    message: str
    action: str


@dataclass(frozen=True)
class Fact:
    label: str
    value: str
    detail: str = ""
    status_class: str = ""


@dataclass(frozen=True)
class Summary:
    verdict: str  # PASS | FAIL | ERROR
    verdict_class: str  # pass | fail | error
    reasons: list[str]  # why the verdict is what it is, one line each
    warnings: list[WarningRow]  # health warnings, shown first in a warning box
    facts: list[Fact]
    checks: list[CheckRow]
    explainers: list[ExplainerRow]


def verdict_of(results: Results) -> tuple[str, str]:
    """The verdict's word and CSS class: a pass with health warnings is not plain green."""
    if results.status == "passed" and results.warnings:
        return "PASS WITH WARNINGS", "warn"
    return VERDICT_WORD[results.status], STATUS_CLASS[results.status]


def _reasons(src: ReportSource, checks: list[CheckRow]) -> list[str]:
    r = src.results
    reasons = list(r.problems)
    for e in r.explainers.values():
        if e.status == "failed":
            reasons.append(f"explainer {e.id} failed: {e.error or 'no message'}")
    failing = [c for c in checks if c.status != "PASS"]
    for c in failing:
        warn = " (warning)" if c.severity == "warning" else ""
        verb = "failed" if c.status == "FAIL" else "could not be evaluated"
        reasons.append(f"check {c.name} {verb}{warn}: {c.reason}")
    if not reasons:
        if checks:
            reasons.append(f"all {len(checks)} checks passed and every explainer finished")
        else:
            reasons.append("the spec defines no checks; every explainer finished")
    reasons += [f"health warning: {w.message}" for w in r.warnings]
    return [r[:1].upper() + r[1:] for r in reasons]


def build(src: ReportSource) -> Summary:
    r = src.results
    checks = [
        CheckRow(
            name=c.name,
            kind=c.kind,
            value=fmt_value(c.value),
            threshold=c.threshold,
            status=c.status.upper(),
            status_class=STATUS_CLASS[c.status],
            severity=c.severity,
            reason=c.reason,
        )
        for c in r.checks
    ]
    explainers = [
        ExplainerRow(
            id=e.id,
            type=e.type,
            scope=e.scope,
            status=e.status,
            status_class=STATUS_CLASS[e.status],
            seconds=fmt_seconds(e.seconds) if e.status == "ok" else "—",
            per_sample=fmt_seconds(e.seconds_per_sample) if e.seconds_per_sample else "—",
            note=(f"reused from {e.reused}" if e.reused else (e.error or "")),
        )
        for e in r.explainers.values()
    ]
    ok = sum(1 for e in r.explainers.values() if e.status == "ok")
    failed = sum(1 for e in r.explainers.values() if e.status == "failed")
    skipped = len(r.explainers) - ok - failed
    passed = sum(1 for c in r.checks if c.status == "pass")
    explainer_detail = f"{failed} failed" + (f", {skipped} skipped" if skipped else "")
    facts = [
        Fact("Slice", f"{r.data.n:,} samples", r.data.source),
        Fact(
            "Accuracy on the slice",
            fmt_num(r.predictions.accuracy, 3),
            f"mean confidence {fmt_num(r.predictions.mean_probability, 3)}",
            "fail" if any(w.code == "accuracy_at_chance" for w in r.warnings) else "",
        ),
        Fact(
            "Explainers",
            f"{ok} of {len(r.explainers)} ran",
            explainer_detail,
            "fail" if failed else "",
        ),
        Fact(
            "Checks",
            f"{passed} of {len(r.checks)} passed" if r.checks else "none defined",
            f"{len(r.checks) - passed} not passed" if r.checks else "",
            "fail" if passed < len(r.checks) else "",
        ),
        Fact(
            "Run time",
            fmt_seconds(r.provenance.seconds),
            r.provenance.finished[:19].replace("T", " "),
        ),
    ]
    warnings = [WarningRow(w.code, w.subject, w.message, w.action) for w in r.warnings]
    word, verdict_class = verdict_of(r)
    return Summary(
        verdict=word,
        verdict_class=verdict_class,
        reasons=_reasons(src, checks),
        warnings=warnings,
        facts=facts,
        checks=checks,
        explainers=explainers,
    )


SECTION = Section("summary", "Summary", build, badge=lambda s: (s.verdict, s.verdict_class))
