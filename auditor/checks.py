"""The spec's ``checks:`` -> pass / fail / error per check, and the run's verdict."""

from __future__ import annotations

import math
from typing import Any

from auditor.results import CheckResult, ExplainerResult, PredictionSummary
from auditor.spec.model import MetricCheck, RankingCheck
from auditor.suggest import did_you_mean


def metric_value(
    name: str,
    predictions: PredictionSummary,
    explainers: dict[str, ExplainerResult],
    model_metrics: dict[str, Any] | None = None,
) -> tuple[float | None, str]:
    """The value a metric check names, or None with the reason it is missing."""
    owner, _, metric = name.partition(".")
    if owner == "model" and metric in (model_metrics or {}):
        record = (model_metrics or {})[metric]
        if record.get("status") != "ok":
            return (
                None,
                f"model metric '{metric}' {record.get('status')}: {record.get('error', '')}",
            )
        return record.get("mean", record.get("values", {}).get("value")), ""
    if owner == "model":
        if metric == "accuracy":
            return predictions.accuracy, ""
        if metric.startswith("per_class_accuracy."):
            cls = metric.split(".", 1)[1]
            value = predictions.per_class_accuracy.get(cls)
            if value is None:
                return None, f"no accuracy for class '{cls}' on this slice"
            return value, ""
        if metric == "mean_probability":
            return predictions.mean_probability, ""
        return (
            None,
            f"unknown model metric '{metric}' "
            "(accuracy, per_class_accuracy.<class>, mean_probability)",
        )
    result = explainers.get(owner)
    if result is None:
        return None, f"explainer '{owner}' did not run"
    if result.status != "ok":
        return None, f"explainer '{owner}' {result.status}: {result.error or ''}".strip()
    found = _lookup(metric, result)
    if found is None:
        known = [*result.metrics, *result.stats, *result.fidelity]
        return None, (
            f"'{owner}' has no metric '{metric}'.{did_you_mean(metric, known)} "
            f"Available: {', '.join(sorted(known)) or 'none'}"
        )
    return found, ""


def _lookup(metric: str, result: ExplainerResult) -> float | None:
    """A metric's mean, a named value of a metric (``deletion.gain``), a stat, a fidelity."""
    head, _, sub = metric.partition(".")
    if head in result.metrics:
        record: Any = result.metrics[head]
        if record.get("status", "ok") != "ok":
            return None
        values = record.get("values", {})
        value = values.get(sub) if sub else record.get("mean", values.get("value"))
        return None if value is None else float(value)
    if metric in result.stats:
        return result.stats[metric].mean
    if metric in result.fidelity:
        return result.fidelity[metric]
    return None


def _threshold(check: MetricCheck) -> str:
    parts = []
    if check.min is not None:
        parts.append(f">= {check.min:g}")
    if check.max is not None:
        parts.append(f"<= {check.max:g}")
    return " and ".join(parts)


def evaluate_metric(
    check: MetricCheck,
    predictions: PredictionSummary,
    explainers: dict[str, ExplainerResult],
    model_metrics: dict[str, Any] | None = None,
) -> CheckResult:
    value, why = metric_value(check.metric, predictions, explainers, model_metrics)
    base = {
        "name": check.name or check.metric,
        "kind": "metric",
        "severity": check.severity,
        "threshold": _threshold(check),
    }
    if value is None or math.isnan(value):
        return CheckResult(**base, status="error", value=None, reason=why or "the value is NaN")
    low = check.min is not None and value < check.min
    high = check.max is not None and value > check.max
    if low or high:
        bound = f"below the minimum {check.min:g}" if low else f"above the maximum {check.max:g}"
        return CheckResult(**base, status="fail", value=value, reason=f"{value:.4g} is {bound}")
    return CheckResult(**base, status="pass", value=value, reason=f"{value:.4g} is within bounds")


def evaluate_ranking(
    check: RankingCheck, explainers: dict[str, ExplainerResult], all_features: list[str]
) -> CheckResult:
    rules = []
    if check.must_include:
        rules.append(f"includes {', '.join(check.must_include)}")
    if check.must_not_include:
        rules.append(f"excludes {', '.join(check.must_not_include)}")
    base = {
        "name": check.name or f"{check.ranking} top {check.top_k}",
        "kind": "ranking",
        "severity": check.severity,
        "threshold": f"top {check.top_k} " + " and ".join(rules),
    }
    result = explainers.get(check.ranking)
    if result is None or result.status != "ok":
        status = "did not run" if result is None else result.status
        return CheckResult(**base, status="error", reason=f"explainer '{check.ranking}' {status}")
    unknown = [f for f in [*check.must_include, *check.must_not_include] if f not in all_features]
    if unknown:
        hints = "; ".join(f"'{f}'{did_you_mean(f, all_features)}" for f in unknown)
        return CheckResult(**base, status="error", reason=f"not a feature of this data: {hints}")
    top = [r.feature for r in result.ranking[: check.top_k]]
    missing = [f for f in check.must_include if f not in top]
    present = [f for f in check.must_not_include if f in top]
    if missing or present:
        why = []
        if missing:
            why.append(f"{', '.join(missing)} not in the top {check.top_k}")
        if present:
            why.append(
                ", ".join(f"{f} is ranked {top.index(f) + 1}" for f in present)
                + f" (within the top {check.top_k})"
            )
        return CheckResult(**base, status="fail", value=top, reason="; ".join(why))
    return CheckResult(**base, status="pass", value=top, reason="the ranking obeys the rule")


def evaluate(
    checks: list[MetricCheck | RankingCheck],
    predictions: PredictionSummary,
    explainers: dict[str, ExplainerResult],
    all_features: list[str],
    model_metrics: dict[str, Any] | None = None,
) -> list[CheckResult]:
    out = []
    for check in checks:
        if isinstance(check, MetricCheck):
            out.append(evaluate_metric(check, predictions, explainers, model_metrics))
        else:
            out.append(evaluate_ranking(check, explainers, all_features))
    return out


def failing(results: list[CheckResult], fail_on: str = "error") -> list[CheckResult]:
    """Checks that make the run fail: error severity (and warnings with fail_on=warning)."""
    severities = {"error"} if fail_on == "error" else {"error", "warning"}
    return [r for r in results if r.status != "pass" and r.severity in severities]
