"""Section: Trend: the verdict and the checked metrics over the audit's last runs.

The runs come from the audit's index, ``<output>/<name>/index.jsonl`` (``auditor.history``),
the run folder's parent: the last ``report.trend`` runs (default 20; 0 turns the section
off) up to and including this one, read from the end of the file so that the cost does not
grow with the history (``recent_runs``). Runs that finished after this one (a report
rendered again later), runs whose folder was deleted and unreadable lines are left out. The
runner renders the report before it indexes the run, so this run is taken from its own
results.json. With fewer than two runs the section is not shown.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from auditor import history
from auditor.report import figures
from auditor.report.canvas import Canvas
from auditor.report.common import STATUS_CLASS, FigureRef, fmt_num
from auditor.report.sections.base import Section
from auditor.report.source import ReportSource

#: Runs drawn when the spec does not say (``report.trend``).
DEFAULT_RUNS = 20
_THRESHOLD = re.compile(r"^\s*(>=|<=|>|<|==)\s*(-?[0-9.]+(?:[eE][+-]?\d+)?)\s*$")


@dataclass(frozen=True)
class TrendRun:
    run_id: str
    finished: str  # "2026-12-02 21:05"
    verdict: str  # passed | failed | error
    verdict_class: str
    checks: str  # "3/4 pass"
    current: bool


@dataclass(frozen=True)
class MetricTrend:
    name: str
    values: list[float | None]
    statuses: list[str | None]  # the run's check of this metric: pass, fail, error, skipped
    threshold: float | None  # the current run's check threshold, drawn dashed
    latest: str
    change: str  # latest minus the run before, "+0.012" ("—" without both)
    failed_runs: int


@dataclass
class TrendSection:
    limit: int  # report.trend
    runs: list[TrendRun]  # oldest first; the last is this run
    metrics: list[MetricTrend]
    figure: FigureRef
    note: str
    counts: dict[str, int] = field(default_factory=dict)  # verdict -> runs


def trend_limit(src: ReportSource) -> int:
    """``report.trend`` (runs drawn), 20 where the spec model has no such key yet."""
    value = getattr(src.options, "trend", DEFAULT_RUNS)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else DEFAULT_RUNS


def recent_runs(
    audit_dir: Path, current: history.IndexEntry, limit: int
) -> list[history.IndexEntry]:
    """The last ``limit`` runs of the audit up to ``current`` (included, last), oldest first.

    Reads ``index.jsonl`` from its end (``history.entries_backwards``) and stops after
    ``limit - 1`` earlier runs: the cost is that of the runs drawn (and of any that finished
    after ``current``), not of the whole history. A run indexed twice keeps its last line;
    invalid lines, runs that finished after ``current`` and runs without a results.json are
    skipped.
    """
    path = Path(audit_dir) / history.INDEX
    earlier: list[history.IndexEntry] = []
    cutoff = current.finished_at
    if limit > 1 and path.is_file():
        for entry in history.entries_backwards(path):
            if entry.run_id == current.run_id:
                continue
            when = entry.finished_at
            if cutoff is not None and when is not None and when > cutoff:
                continue
            if not os.path.isfile(os.path.join(audit_dir, entry.path, "results.json")):
                continue
            earlier.append(entry)
            if len(earlier) >= limit - 1:
                break
    return [*reversed(earlier), current]


def _when(entry: history.IndexEntry) -> str:
    when = entry.finished_at
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if when else entry.finished


def _thresholds(src: ReportSource) -> dict[str, float]:
    """The current run's metric check thresholds (``>= 0.9`` -> 0.9), by check name."""
    found = {}
    for c in src.results.checks:
        if c.kind != "metric":
            continue
        m = _THRESHOLD.match(c.threshold)
        if m:
            found[c.name] = float(m.group(2))
    return found


def _change(last: float | None, before: float | None) -> str:
    if last is None or before is None:
        return "—"
    return "no change" if last == before else f"{last - before:+.4g}"


def build(src: ReportSource) -> TrendSection | None:
    limit = trend_limit(src)
    if limit < 2:
        return None
    folder = src.folder.path
    current = history.entry_from_results(folder, src.raw)
    runs = recent_runs(folder.parent, current, limit)
    if len(runs) < 2:
        return None
    names = list(dict.fromkeys(name for e in runs for name in e.metrics))
    thresholds = _thresholds(src)
    metrics = []
    for name in names:
        values = [e.metrics.get(name) for e in runs]
        statuses = [e.checks.get(name) for e in runs]
        last, before = values[-1], values[-2]
        metrics.append(
            MetricTrend(
                name=name,
                values=values,
                statuses=statuses,
                threshold=thresholds.get(name),
                latest=fmt_num(last),
                change=_change(last, before),
                failed_runs=sum(s in ("fail", "error") for s in statuses),
            )
        )
    rows = [
        TrendRun(
            run_id=e.run_id,
            finished=_when(e),
            verdict=e.status,
            verdict_class=STATUS_CLASS.get(e.status, "muted"),
            checks=f"{sum(s == 'pass' for s in e.checks.values())}/{len(e.checks)} pass",
            current=e is runs[-1],
        )
        for e in runs
    ]
    counts: dict[str, int] = {}
    for e in runs:
        counts[e.status] = counts.get(e.status, 0) + 1
    note = (
        f"The last {len(runs)} runs of this audit (report.trend: {limit}), oldest left, "
        f"this run last, from {folder.parent / history.INDEX}. Each marker is one run, "
        "coloured by the status of the check on that metric (green pass, red fail, purple "
        "error, grey not checked); the dashed line is this run's threshold."
    )
    return TrendSection(
        limit=limit,
        runs=rows,
        metrics=metrics,
        figure=FigureRef(
            "trend/trend.png", f"Verdict and checked metrics over the last {len(runs)} runs", note
        ),
        note=note,
        counts=counts,
    )


def draw(view: TrendSection, src: ReportSource, canvas: Canvas) -> None:
    verdicts = [STATUS_CLASS.get(r.verdict, "muted") for r in view.runs]
    panels = [(m.name, m.values, m.statuses, m.threshold) for m in view.metrics]
    canvas.figure(view.figure.name, figures.trend(verdicts, panels, tick_labels(view.runs)))


def tick_labels(runs: list[TrendRun]) -> list[str]:
    """What names each run on the x axis: "21:05" when every run finished on one day,
    "12-02" across days, the run id where the time is unknown."""
    days = {r.finished[:10] for r in runs}
    timed = all(len(r.finished) == 16 for r in runs)
    if not timed:
        return [r.run_id for r in runs]
    return [r.finished[11:] if len(days) == 1 else r.finished[5:10] for r in runs]


def _badge(view: TrendSection) -> tuple[str, str]:
    return str(len(view.runs)), ""


SECTION = Section("trend", "Trend", build, draw, badge=_badge)
