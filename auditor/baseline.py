"""Baselines (issue 15): the run a run is compared with, and the checks against it.

A spec's ``baseline:`` is ``none`` (the default), ``previous`` (the last finished run of the
same audit under the output folder, ``auditor.history.previous``) or a finished run folder.
``resolve`` finds it before the new run folder exists. After the run's results are stored,
the runner compares the two folders (``auditor.diff.compare_runs``), writes the diff into
``<run folder>/diff/`` and evaluates the baseline checks from it (``evaluate_baseline``):

- ``ranking_stability``: Kendall's tau over the features both runs rank, or the share of the
  top k kept (``auditor.diff.rankings``);
- ``metric_change``: after - before of a metric, absolute or relative to before;
- ``model_unchanged`` / ``data_unchanged``: the weights' / data slice's sha256 are equal.

Without a baseline run these checks are ``skipped`` with the reason; they never change the
exit code then.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from auditor.errors import SpecIssue
from auditor.results import CheckResult, ExplainerResult, PredictionSummary, Results
from auditor.spec.model import (
    AuditSpec,
    BaselineCheck,
    DataUnchangedCheck,
    MetricChangeCheck,
    ModelUnchangedCheck,
    RankingStabilityCheck,
)
from auditor.suggest import did_you_mean

#: Exit codes of a finished run (its checks passed or one failed): what a baseline may be.
FINISHED = (0, 1)
#: The folder of the diff inside the run folder.
DIFF_FOLDER = "diff"
#: Characters of a sha256 shown in a reason.
SHORT = 12

BASELINE_TYPES = (RankingStabilityCheck, MetricChangeCheck, ModelUnchangedCheck, DataUnchangedCheck)


def is_baseline_check(check: Any) -> bool:
    return isinstance(check, BASELINE_TYPES)


# -- which run ---------------------------------------------------------------------------
def finished_run_folder(base: Path, value: str) -> Path:
    """The run folder ``value`` names (relative to ``base``, the spec's folder), resolved;
    ValueError saying why when it is not a finished run (no folder, no spec.yaml or
    results.json, unreadable results, exit code 2 or 3)."""
    path = (base / Path(value).expanduser()).resolve()
    if not path.is_dir():
        what = "is a file, not a run folder" if path.exists() else "does not exist"
        hint = did_you_mean(value, ["previous", "none"]) if "/" not in value else ""
        raise ValueError(f"baseline {path} {what}; use previous, none or a run folder.{hint}")
    if not (path / "spec.yaml").is_file():
        raise ValueError(f"baseline {path} is not a run folder (no spec.yaml in it)")
    results = path / "results.json"
    if not results.is_file():
        raise ValueError(f"baseline {path} did not finish (no results.json in it)")
    try:
        raw = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"baseline {results} is not readable JSON ({exc})") from None
    code = raw.get("exit_code") if isinstance(raw, dict) else None
    if code not in FINISHED:
        raise ValueError(
            f"baseline {path} did not finish its audit (exit code {code}); "
            "a baseline is a run that exited 0 or 1"
        )
    return path


@dataclass(frozen=True)
class Baseline:
    """The baseline run folder, or None with the reason why there is none."""

    path: Path | None
    why_none: str = ""


NO_BASELINE = Baseline(None, "the spec has no baseline (baseline: none)")


def resolve(
    spec: AuditSpec, output: Path, exclude: str | None, warn: Callable[[str], None] | None
) -> Baseline:
    """The spec's baseline run: a folder validated already, the last finished run of the
    audit in ``output/<name>/`` other than ``exclude`` (``previous``), or none."""
    if spec.baseline == "none":
        return NO_BASELINE
    if spec.baseline_path is not None:
        return Baseline(spec.baseline_path)
    from auditor import history

    audit_dir = Path(output).resolve() / spec.name
    entry = history.previous(audit_dir, exclude=exclude, warn=warn)
    if entry is None:
        return Baseline(None, f"no earlier finished run of '{spec.name}' in {audit_dir}")
    return Baseline((audit_dir / entry.path).resolve())


def reference_issues(spec: AuditSpec) -> list[SpecIssue]:
    """Baseline checks that name an explainer the spec does not run, or a metric that is
    not measured for it (with a did-you-mean)."""
    from auditor.spec.load import metric_reference_issue

    ids = [e.key for e in spec.explainers]
    listed = ", ".join(ids) if ids else "none"
    issues = []
    for i, check in enumerate(spec.checks):
        if isinstance(check, RankingStabilityCheck) and check.ranking_stability not in ids:
            issues.append(
                SpecIssue(
                    f"check names explainer '{check.ranking_stability}', which this spec does "
                    f"not run.{did_you_mean(check.ranking_stability, ids)} Explainers: {listed}",
                    ("checks", i, "ranking_stability"),
                )
            )
        elif isinstance(check, MetricChangeCheck):
            problem = metric_reference_issue(spec, check.metric_change)
            if problem is not None:
                issues.append(SpecIssue(problem, ("checks", i, "metric_change")))
    return issues


# -- the checks --------------------------------------------------------------------------
def _base(check: BaselineCheck) -> dict[str, Any]:
    """name, kind, severity and threshold of a baseline check's result."""
    if isinstance(check, RankingStabilityCheck):
        rules = []
        if check.min_kendall_tau is not None:
            rules.append(f"kendall tau >= {check.min_kendall_tau:g}")
        if check.min_top_k_overlap is not None:
            rules.append(f"top-k overlap >= {check.min_top_k_overlap:g}")
        name, kind, threshold = (
            f"{check.ranking_stability} ranking stability",
            "ranking_stability",
            " and ".join(rules),
        )
    elif isinstance(check, MetricChangeCheck):
        unit = " (relative)" if check.relative else ""
        rules = []
        if check.max_increase is not None:
            rules.append(f"increase <= {check.max_increase:g}")
        if check.max_decrease is not None:
            rules.append(f"decrease <= {check.max_decrease:g}")
        name, kind, threshold = (
            f"{check.metric_change} change",
            "metric_change",
            " and ".join(rules) + unit,
        )
    elif isinstance(check, ModelUnchangedCheck):
        name, kind, threshold = "model unchanged", "model_unchanged", "same weights sha256"
    else:
        name, kind, threshold = "data unchanged", "data_unchanged", "same data sha256"
    return {
        "name": check.name or name,
        "kind": kind,
        "severity": check.severity,
        "threshold": threshold,
    }


def skipped(check: BaselineCheck, reason: str) -> CheckResult:
    """The check's result without a baseline run to compare with."""
    return CheckResult(**_base(check), status="skipped", value=None, reason=reason)


def evaluate_baseline(
    check: BaselineCheck, diff: Any, before: dict[str, Any], after: Results
) -> CheckResult:
    """pass / fail / error of one baseline check, from the ``DiffResult`` of the baseline
    (``before``: its results.json) and this run (``after``)."""
    base = _base(check)
    if isinstance(check, RankingStabilityCheck):
        return _ranking_stability(check, diff, base)
    if isinstance(check, MetricChangeCheck):
        return _metric_change(check, diff, before, after, base)
    field = "weights sha256" if isinstance(check, ModelUnchangedCheck) else "data sha256"
    what = "the weights are" if isinstance(check, ModelUnchangedCheck) else "the data slice is"
    row = next((i for i in diff.inputs if i.field == field), None)
    if row is None or not row.before or not row.after:
        return CheckResult(
            **base,
            status="error",
            reason=f"the {field} of a run is not known (a model without a weights file?)",
        )
    if row.changed:
        return CheckResult(
            **base,
            status="fail",
            value=row.after,
            reason=f"{what} not the baseline's: "
            f"{field} {row.before[:SHORT]} -> {row.after[:SHORT]}",
        )
    return CheckResult(
        **base,
        status="pass",
        value=row.after,
        reason=f"{what} the baseline's ({field} {row.after[:SHORT]})",
    )


def _ranking_stability(
    check: RankingStabilityCheck, diff: Any, base: dict[str, Any]
) -> CheckResult:
    eid = check.ranking_stability
    found = next((r for r in diff.rankings if r.explainer == eid), None)
    if found is None:
        why = [n for n in diff.not_compared if n.startswith(f"explainer {eid}:")]
        why += [f"only the baseline ran explainer {eid}"] * (f"explainer {eid}" in diff.only_before)
        why += [f"the baseline did not run explainer {eid}"] * (
            f"explainer {eid}" in diff.only_after
        )
        reason = "; ".join(why) or f"explainer {eid}'s rankings were not compared"
        return CheckResult(**base, status="error", reason=reason)
    measured = {"kendall_tau": found.kendall_tau, "top_k_overlap": found.top_k_overlap}
    bounds = {"kendall_tau": check.min_kendall_tau, "top_k_overlap": check.min_top_k_overlap}
    used = {key: measured[key] for key, bound in bounds.items() if bound is not None}
    value: Any = next(iter(used.values())) if len(used) == 1 else used
    nan = [key for key, v in used.items() if v is None or not math.isfinite(v)]
    if nan:
        return CheckResult(
            **base,
            status="error",
            value=None,
            reason=f"{', '.join(k.replace('_', ' ') for k in nan)} is not defined "
            f"({found.shared_features} shared features)",
        )
    low = [
        f"{key.replace('_', ' ')} {used[key]:.4g} is below the minimum {bounds[key]:g}"
        for key in used
        if used[key] < bounds[key]  # type: ignore[operator]
    ]
    said = ", ".join(f"{key.replace('_', ' ')} {v:.4g}" for key, v in used.items())
    detail = f" ({found.shared_features} shared features, top {found.k})"
    if found.entered or found.left:
        detail += f"; entered the top {found.k}: {', '.join(found.entered) or 'none'}"
        detail += f"; left it: {', '.join(found.left) or 'none'}"
    if low:
        return CheckResult(**base, status="fail", value=value, reason="; ".join(low) + detail)
    return CheckResult(**base, status="pass", value=value, reason=said + detail)


def _metric_change(
    check: MetricChangeCheck,
    diff: Any,
    before: dict[str, Any],
    after: Results,
    base: dict[str, Any],
) -> CheckResult:
    from auditor.checks import metric_value

    name = check.metric_change
    old, why_old = stored_metric_value(name, before)
    new, why_new = metric_value(name, after.predictions, after.explainers, after.model_metrics)
    if old is None or not math.isfinite(old):
        return CheckResult(**base, status="error", reason=f"baseline: {why_old or 'NaN'}")
    if new is None or not math.isfinite(new):
        return CheckResult(**base, status="error", reason=f"this run: {why_new or 'NaN'}")
    change = new - old
    if check.relative:
        if old == 0:
            return CheckResult(
                **base,
                status="error",
                value=None,
                reason=f"no relative change: the baseline's value is 0 (now {new:.4g})",
            )
        change = change / abs(old)
    shown = f"{change:+.2%}" if check.relative else f"{change:+.4g}"
    said = f"{old:.4g} -> {new:.4g} ({shown})"
    row = next((m for m in diff.metrics if m.name == name), None)
    if row is not None:
        said += f"; {row.assessment} ({row.test.method})" if row.test.method else ""
    over = check.max_increase is not None and change > check.max_increase
    under = check.max_decrease is not None and -change > check.max_decrease
    if over or under:
        bound = check.max_increase if over else check.max_decrease
        limit = f"{bound:.2%}" if check.relative else f"{bound:g}"
        word = "increase" if over else "decrease"
        return CheckResult(
            **base,
            status="fail",
            value=change,
            reason=f"{said}: the {word} is above the maximum {limit}",
        )
    return CheckResult(**base, status="pass", value=change, reason=said)


def stored_metric_value(name: str, raw: dict[str, Any]) -> tuple[float | None, str]:
    """A metric's value as a metric check reads it, from a stored results.json."""
    from auditor.checks import metric_value

    try:
        predictions = PredictionSummary.model_validate(raw["predictions"])
        explainers = {
            k: ExplainerResult.model_validate(v) for k, v in (raw["explainers"] or {}).items()
        }
    except (KeyError, TypeError, ValidationError) as exc:
        return None, f"its results.json cannot be read as this auditor's ({exc.__class__.__name__})"
    return metric_value(name, predictions, explainers, raw.get("model_metrics"))
