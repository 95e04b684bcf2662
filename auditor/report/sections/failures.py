"""Section: Failures: every explainer, metric and check that did not work, with its message."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.report.sections.base import Section
from auditor.report.source import ReportSource


@dataclass(frozen=True)
class Failure:
    kind: str  # explainer | metric | check | run
    name: str
    status: str
    message: str
    traceback: str


@dataclass(frozen=True)
class FailuresSection:
    items: list[Failure]


def build(src: ReportSource) -> FailuresSection:
    r = src.results
    items = [Failure("run", "run", "problem", p, "") for p in r.problems]
    for e in r.explainers.values():
        if e.status != "ok":
            items.append(
                Failure(
                    "explainer", f"{e.id} ({e.type})", e.status, e.error or "", e.traceback or ""
                )
            )
        for metric, record in e.metrics.items():
            if isinstance(record, dict) and record.get("status") == "failed":
                items.append(
                    Failure(
                        "metric",
                        f"{metric} of {e.id}",
                        "failed",
                        str(record.get("error", "")),
                        str(record.get("traceback", "")),
                    )
                )
    for scope in (r.model_metrics, r.cross_metrics):
        for metric, record in scope.items():
            if isinstance(record, dict) and record.get("status") == "failed":
                items.append(
                    Failure(
                        "metric",
                        metric,
                        "failed",
                        str(record.get("error", "")),
                        str(record.get("traceback", "")),
                    )
                )
    for c in r.checks:
        if c.status == "error":
            items.append(Failure("check", c.name, "error", c.reason, ""))
    return FailuresSection(items)


def badge(view: FailuresSection) -> tuple[str, str]:
    return (str(len(view.items)), "fail") if view.items else ("", "")


SECTION = Section("failures", "Failures", build, badge=badge)
