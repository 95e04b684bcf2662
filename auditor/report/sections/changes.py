"""Section: Changes since <baseline run id>: what changed from the spec's baseline run.

Shown only for a run compared with a baseline (``results.baseline``, the spec's
``baseline: previous | <run folder>``). Everything comes from ``<run folder>/diff/diff.json``
as the runner wrote it (``auditor.diff.compare``; nothing is recomputed): the inputs that
changed (weights, data slice, spec, versions, seed, device), the checks whose status
changed (to fail first), each explainer's ranking stability (Kendall tau, top-k overlap,
rank-biased overlap; features that entered or left the top k) and each metric's change
with whether it is larger than the runs' noise (``auditor.diff.noise``). The diff's own
page (``diff/diff.html``, ``diff/diff.pdf``) is linked for the details.

A check's status after is this run's own (results.json): the runner evaluates the baseline
checks from the diff, after diff.json was written. When the comparison failed or diff.json
is missing or unreadable, the section says so in one sentence.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.report.common import STATUS_CLASS, fmt_num, short_sha
from auditor.report.sections.base import Section
from auditor.report.source import ReportSource
from auditor.results import BaselineInfo
from auditor.suggest import join_names

#: The inputs always listed (changed or not), with what the section calls them.
KEY_INPUTS = {
    "weights sha256": "model weights",
    "data sha256": "data slice",
    "spec.yaml sha256": "spec.yaml",
    "--set overrides": "--set overrides",
}
#: Names listed in a cell before "... (n in all)".
NAMES = 8
#: Lines of the spec's unified diff shown (the rest is in diff.html).
SPEC_LINES = 20
#: Metric assessments (``auditor.diff.compare.compare_metric``): order and CSS class.
ASSESSMENT_ORDER = {"worse": 0, "changed": 1, "better": 2, "within noise": 3, "undecided": 4}
ASSESSMENT_CLASS = {"worse": "fail", "changed": "warn", "better": "pass"}
METHOD = {"wilcoxon": "Wilcoxon", "ci95": "95% intervals"}


@dataclass(frozen=True)
class InputRow:
    name: str
    before: str
    after: str
    changed: bool


@dataclass(frozen=True)
class CheckRow:
    name: str
    before: str  # pass / fail / error / skipped; "—" when the run had no such check
    after: str
    before_class: str
    after_class: str
    value_before: str
    value_after: str
    threshold: str
    change: str  # "pass → fail", "new", "removed"
    change_class: str


@dataclass(frozen=True)
class RankingRow:
    explainer: str
    kendall_tau: str
    top_k: str  # "9 of 10"
    rbo: str
    entered: str
    left: str
    per_sample: str  # "mean Spearman 0.87 over 64 samples", or why there is none
    changed: bool


@dataclass(frozen=True)
class MetricRow:
    name: str
    before: str
    after: str
    difference: str
    beyond_noise: str  # "yes", "no", "undecided"
    test: str  # "Wilcoxon p = 0.003, 64 pairs"
    assessment: str
    assessment_class: str


@dataclass
class ChangesSection:
    baseline_id: str
    baseline_path: str
    error: str  # why no changes can be shown ("" when the diff was read)
    sentence: str = ""  # the gist: which inputs changed, the verdict, the checks
    inputs: list[InputRow] = field(default_factory=list)
    unchanged: str = ""  # the other inputs that did not change, in one line
    spec_diff: list[str] = field(default_factory=list)
    spec_diff_more: int = 0  # lines of the spec diff not shown
    checks: list[CheckRow] = field(default_factory=list)  # status changed, to fail first
    same_checks: int = 0
    rankings: list[RankingRow] = field(default_factory=list)
    top_k: int = 0
    metrics: list[MetricRow] = field(default_factory=list)  # larger changes first
    only_before: str = ""
    only_after: str = ""
    not_compared: list[str] = field(default_factory=list)
    link: str = ""  # diff.html relative to the report (the run folder), "" when not written
    pdf: str = ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return fmt_num(value, digits)


def _signed(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return "no change" if value == 0 else ("+" if value > 0 else "") + fmt_num(value)


def _short(value: Any) -> str:
    return "—" if value is None else str(short_sha(value))


def _value(value: Any) -> str:
    """A check's value: a sha256 shortened, names listed, numbers formatted."""
    value = short_sha(value)
    return join_names(value, NAMES) if isinstance(value, list) else _num(value)


def read_diff(src: ReportSource, info: BaselineInfo) -> tuple[dict[str, Any] | None, str]:
    """diff.json of the run (or None) and, without it, why: in words, never a traceback."""
    if info.error:
        return None, info.error
    if not info.diff:
        return None, "the run recorded no diff with the baseline run"
    where = f"{info.diff}/diff.json"
    try:
        path = src.folder.file(where)
    except ValueError:
        return None, f"the diff folder {info.diff!r} is outside the run folder"
    if not path.is_file():
        return None, (
            f"{where} is missing from the run folder; `auditor diff {info.path} "
            f"{src.folder.path}` makes it again"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"{where} could not be read ({type(exc).__name__}: {exc})"
    if not isinstance(data, dict):
        return None, f"{where} is not a diff (a JSON object was expected)"
    return data, ""


def inputs(diff: dict[str, Any]) -> tuple[list[InputRow], str]:
    """The key inputs (always) and every other input that changed; the unchanged rest."""
    rows, same, versions = [], [], 0
    for item in map(_dict, _list(diff.get("inputs"))):
        name = str(item.get("field") or "?")
        changed = bool(item.get("changed"))
        if name in KEY_INPUTS or changed:
            label = KEY_INPUTS.get(name, name)
            before, after = _short(item.get("before")), _short(item.get("after"))
            rows.append(InputRow(label, before, after, changed))
        elif name.startswith("version: "):
            versions += 1
        else:
            same.append(name)
    order = list(KEY_INPUTS.values())
    key = sorted((r for r in rows if r.name in order), key=lambda r: order.index(r.name))
    rows = key + [r for r in rows if r not in key]
    if versions:
        same.append(f"{versions} package version{'s' if versions > 1 else ''}")
    return rows, join_names(same)


def _status(value: Any) -> str:
    return str(value) if value else "—"


def checks(diff: dict[str, Any], src: ReportSource) -> tuple[list[CheckRow], int]:
    """Checks whose status differs between the baseline run and this one, to fail first.

    Before: the baseline's status as diff.json has it. After: this run's results.json (the
    baseline checks were evaluated after diff.json was written)."""
    before = {str(c.get("name")): c for c in map(_dict, _list(diff.get("checks")))}
    now = {c.name: c for c in src.results.checks}
    rows, same = [], 0
    for name in list(before) + [n for n in now if n not in before]:
        b, a = before.get(name), now.get(name)
        s_b = _status(b.get("before")) if b else "—"
        s_a = a.status if a else "—"
        if s_b == s_a:
            same += 1
            continue
        change = "new" if s_b == "—" else "removed" if s_a == "—" else f"{s_b} → {s_a}"
        rows.append(
            CheckRow(
                name=name,
                before=s_b,
                after=s_a,
                before_class=STATUS_CLASS.get(s_b, "muted"),
                after_class=STATUS_CLASS.get(s_a, "muted"),
                value_before=_value(b.get("value_before")) if b else "—",
                value_after=_value(a.value) if a else "—",
                threshold=a.threshold if a else str((b or {}).get("threshold") or ""),
                change=change,
                change_class=STATUS_CLASS.get(s_a, "muted") if s_a in ("fail", "error") else "",
            )
        )
    order = {"fail": 0, "error": 1, "pass": 2, "skipped": 3}
    rows.sort(key=lambda r: order.get(r.after, 4))
    return rows, same


def rankings(diff: dict[str, Any]) -> list[RankingRow]:
    rows = []
    for r in map(_dict, _list(diff.get("rankings"))):
        k = r.get("k") if isinstance(r.get("k"), int) else 0
        overlap = r.get("top_k_overlap")
        kept = "—"
        if isinstance(overlap, int | float) and math.isfinite(overlap) and k:
            kept = f"{round(overlap * k)} of {k}"
        sample = _dict(r.get("per_sample"))
        if sample:
            per_sample = (
                f"mean Spearman {_num(sample.get('mean_spearman'), 3)} over "
                f"{sample.get('n')} samples"
            )
            if sample.get("mean_ssim") is not None:
                per_sample += f"; mean SSIM {_num(sample.get('mean_ssim'), 3)}"
        else:
            per_sample = str(r.get("per_sample_note") or "")
        entered, left = _list(r.get("entered")), _list(r.get("left"))
        tau = r.get("kendall_tau")
        rows.append(
            RankingRow(
                explainer=str(r.get("explainer") or "?"),
                kendall_tau=_num(tau, 3),
                top_k=kept,
                rbo=_num(r.get("rbo"), 3),
                entered=join_names(entered, NAMES) or "none",
                left=join_names(left, NAMES) or "none",
                per_sample=per_sample,
                changed=bool(entered or left) or tau != 1,
            )
        )
    return rows


def _test(test: dict[str, Any]) -> tuple[str, str]:
    """Whether a difference is larger than the runs' noise, and by which test."""
    significant = test.get("significant")
    answer = "undecided" if significant is None else "yes" if significant else "no"
    method = METHOD.get(str(test.get("method")), "")
    words = []
    if method == "Wilcoxon" and isinstance(test.get("p_value"), int | float):
        words.append(f"Wilcoxon p = {_num(test['p_value'], 2)}, {test.get('pairs')} pairs")
    elif method:
        words.append(method + (" apart" if significant else " overlap"))
    if test.get("note") and method != "95% intervals":
        words.append(str(test["note"]))
    return answer, "; ".join(words)


def metrics(diff: dict[str, Any]) -> list[MetricRow]:
    rows = []
    for m in map(_dict, _list(diff.get("metrics"))):
        answer, test = _test(_dict(m.get("test")))
        assessment = str(m.get("assessment") or "undecided")
        rows.append(
            MetricRow(
                name=str(m.get("name") or "?"),
                before=_num(m.get("before")),
                after=_num(m.get("after")),
                difference=_signed(m.get("difference")),
                beyond_noise=answer,
                test=test,
                assessment=assessment,
                assessment_class=ASSESSMENT_CLASS.get(assessment, "muted"),
            )
        )
    rows.sort(key=lambda r: ASSESSMENT_ORDER.get(r.assessment, 5))
    return rows


def sentence(
    rows: list[InputRow], diff: dict[str, Any], src: ReportSource, changed: list[CheckRow]
) -> str:
    """The gist: which inputs changed, the verdict before and now, the checks that moved."""
    key = [r for r in rows if r.name in KEY_INPUTS.values()]
    moved = [r.name for r in key if r.changed]
    kept = [r.name for r in key if not r.changed]
    others = [r.name for r in rows if r.changed and r not in key]
    if moved:
        parts = [f"Changed since the baseline: {join_names(moved + others)}."]
    elif others:
        parts = [f"Same weights, data and spec; changed: {join_names(others, NAMES)}."]
    else:
        parts = ["Nothing the run was made from changed."]
    if moved and kept:
        parts.append(f"Unchanged: {join_names(kept)}.")
    before = str(_dict(diff.get("before")).get("status") or "?")
    now = src.results.status
    parts.append(
        f"Verdict: {before} then, {now} now." if before != now else f"Verdict: {now}, as then."
    )
    to_fail = [c.name for c in changed if c.after == "fail"]
    if to_fail:
        parts.append(f"Now failing: {join_names(to_fail, NAMES)}.")
    return " ".join(parts)


def _spec_lines(diff: dict[str, Any]) -> tuple[list[str], int]:
    text = diff.get("spec_diff")
    lines = text.splitlines() if isinstance(text, str) else []
    return lines[:SPEC_LINES], max(0, len(lines) - SPEC_LINES)


def _links(src: ReportSource, folder: str) -> tuple[str, str]:
    """diff.html and diff.pdf relative to the report (both sit in the run folder)."""
    found = []
    for name in ("diff.html", "diff.pdf"):
        relative = f"{folder}/{name}"
        try:
            found.append(relative if src.folder.file(relative).is_file() else "")
        except ValueError:
            found.append("")
    return found[0], found[1]


def build(src: ReportSource) -> ChangesSection | None:
    info = src.results.baseline
    if info is None:
        return None
    view = ChangesSection(info.run_id, info.path, "")
    diff, error = read_diff(src, info)
    if diff is None:
        view.error = f"No changes can be shown: {error.rstrip('.')}."
        return view
    view.inputs, view.unchanged = inputs(diff)
    view.spec_diff, view.spec_diff_more = _spec_lines(diff)
    view.checks, view.same_checks = checks(diff, src)
    view.rankings = rankings(diff)
    view.top_k = diff.get("top_k") if isinstance(diff.get("top_k"), int) else 0
    view.metrics = metrics(diff)
    view.only_before = join_names(map(str, _list(diff.get("only_before"))), NAMES)
    view.only_after = join_names(map(str, _list(diff.get("only_after"))), NAMES)
    view.not_compared = [str(n) for n in _list(diff.get("not_compared"))]
    view.sentence = sentence(view.inputs, diff, src, view.checks)
    view.link, view.pdf = _links(src, Path(str(info.diff)).as_posix())
    return view


def _badge(view: ChangesSection) -> tuple[str, str]:
    """The contents' pill: an error, or how many checks changed status (red: to fail)."""
    if view.error:
        return "error", "error"
    if not view.checks:
        return "", ""
    failing = any(c.after == "fail" for c in view.checks)
    return str(len(view.checks)), "fail" if failing else ""


SECTION = Section("changes", "Changes since baseline", build, badge=_badge)
