"""The spec's ``checks:`` -> pass / fail / error per check, and the run's verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.explainers.ranking import tie_groups
from auditor.explainers.regions import layout_names
from auditor.results import CheckResult, ExplainerResult, PredictionSummary
from auditor.run_folder import RunFolder
from auditor.spec.model import MetricCheck, RankingCheck
from auditor.suggest import did_you_mean, join_names

#: Names listed at most in a reason; the count of the rest follows.
LISTED = 10


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


@dataclass(frozen=True)
class Ranked:
    """Every feature one explainer ranked, in feature order: names and importance.

    ``importance`` is the full ranking (``rankings/<id>.npy``, as the report and the health
    warnings read it); None where only results.json's kept top is known.
    """

    names: list[str]
    importance: np.ndarray | None = None
    #: With ``data.groups``: the ranking of groups and ungrouped columns (``.groups.npy``).
    groups: Ranked | None = None


def stored_rankings(
    folder: RunFolder,
    explained: dict[str, ExplainerResult],
    local_names: list[str],
    unit_names: list[str] | None = None,
) -> dict[str, Ranked]:
    """Each explainer's own features and full ranking, from the run folder: a local
    explainer ranks ``local_names`` (columns, pixels or regions), a global one of images its
    grid's cells (``extra["features"]``); importance from ``rankings/<id>.npy``. With
    ``unit_names`` (data.groups: groups, then ungrouped columns) also the group ranking
    from ``rankings/<id>.groups.npy``."""
    ranked = {}
    for key, result in explained.items():
        names = layout_names(result.extra.get("features") or {}) or list(local_names)
        path = folder.file(f"rankings/{key}.npy")
        stored = np.load(path, allow_pickle=False) if path.is_file() else None
        groups = None
        group_path = folder.file(f"rankings/{key}.groups.npy")
        if unit_names is not None and group_path.is_file():
            values = np.load(group_path, allow_pickle=False)
            groups = Ranked(list(unit_names), np.asarray(values[0], np.float64))
        ranked[key] = Ranked(
            names, None if stored is None else np.asarray(stored[0], np.float64), groups
        )
    return ranked


def evaluate_ranking(
    check: RankingCheck, explainers: dict[str, ExplainerResult], ranked: Ranked | None
) -> CheckResult:
    """pass / fail on the explainer's top ``top_k``; error where the explainer did not run,
    a name is not one of its features, or the verdict depends on the order within a tie.

    A tie group that straddles position ``top_k`` (``tie_groups``, the report's rule) makes
    the top k undecided for its members only: features ranked wholly above it are in the top
    k, those wholly below it are out.
    """
    rules = []
    if check.must_include:
        rules.append(f"includes {join_names(check.must_include)}")
    if check.must_not_include:
        rules.append(f"excludes {join_names(check.must_not_include)}")
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
    named = [*check.must_include, *check.must_not_include]
    groups = None if ranked is None else ranked.groups
    if groups is not None and any(f not in ranked.names and f in groups.names for f in named):  # type: ignore[union-attr]
        ranked = groups  # a group is named: the check is over groups
        base["threshold"] = f"top {check.top_k} groups " + " and ".join(rules)
        result = result.model_copy(update={"ranking": result.group_ranking or []})
    names, importance = _full_ranking(result, ranked)
    unknown = [f for f in [*check.must_include, *check.must_not_include] if f not in names]
    if unknown:
        hints = "; ".join(f"'{f}'{did_you_mean(f, names)}" for f in unknown)
        return CheckResult(
            **base, status="error", reason=f"not a feature '{check.ranking}' ranks: {hints}"
        )
    order, starts = tie_groups(importance)
    k = min(check.top_k, len(order))
    low, high = _straddling_tie(starts, k)
    position = {names[i]: p for p, i in enumerate(order)}
    top = [names[i] for i in order[:k]]
    missing = [f for f in check.must_include if position[f] >= high]
    present = [f for f in check.must_not_include if position[f] < low]
    if missing or present:
        why = []
        if missing:
            why.append(f"{join_names(missing)} not in the top {check.top_k}")
        if present:
            why.append(
                ", ".join(f"{f} is ranked {position[f] + 1}" for f in present)
                + f" (within the top {check.top_k})"
            )
        return CheckResult(**base, status="fail", value=top, reason="; ".join(why))
    undecided = [
        f for f in [*check.must_include, *check.must_not_include] if low <= position[f] < high
    ]
    if undecided:
        tied = [names[i] for i in order[low:high]]
        value = float(importance[order[low]])
        reason = (
            f"the ranking ties at position {k} "
            f"(features {join_names(tied, LISTED)} share {value:.4g}): "
            f"the top {k} is not decided for {join_names(undecided)}"
        )
        return CheckResult(**base, status="error", value=top, reason=reason)
    return CheckResult(**base, status="pass", value=top, reason="the ranking obeys the rule")


def _full_ranking(result: ExplainerResult, ranked: Ranked | None) -> tuple[list[str], np.ndarray]:
    """Names and importance of every ranked feature, or of results.json's kept top."""
    importance = None if ranked is None else ranked.importance
    if ranked is not None and importance is not None and len(importance) == len(ranked.names):
        return list(ranked.names), np.asarray(importance, dtype=np.float64)
    kept = [r.feature for r in result.ranking]
    importance = np.array([r.importance for r in result.ranking], dtype=np.float64)
    if ranked is None:
        return kept, importance
    # every name is known, the importance only of the kept top: the rest rank below it
    rest = [name for name in ranked.names if name not in set(kept)]
    return [*kept, *rest], np.concatenate([importance, np.zeros(len(rest))])


def _straddling_tie(starts: np.ndarray, k: int) -> tuple[int, int]:
    """Positions ``[low, high)`` of the tie that straddles position ``k`` (its members are
    ranked both within and after the top k), or ``(k, k)`` when none does."""
    if k <= 0 or k >= len(starts) or starts[k] != starts[k - 1]:
        return k, k
    low = int(starts[k])
    high = k
    while high < len(starts) and starts[high] == low:
        high += 1
    return low, high


def evaluate(
    checks: list[Any],
    predictions: PredictionSummary,
    explainers: dict[str, ExplainerResult],
    ranked: dict[str, Ranked],
    model_metrics: dict[str, Any] | None = None,
    baseline_reason: str = "no baseline run to compare with",
) -> list[CheckResult]:
    """Each check's result; a ranking check on the features of its own explainer
    (``ranked``, by explainer id). A baseline check (``auditor.baseline``) is ``skipped``
    here with ``baseline_reason``: the runner evaluates it once the run is compared with
    its baseline run."""
    out = []
    for check in checks:
        if isinstance(check, MetricCheck):
            out.append(evaluate_metric(check, predictions, explainers, model_metrics))
        elif isinstance(check, RankingCheck):
            out.append(evaluate_ranking(check, explainers, ranked.get(check.ranking)))
        else:
            from auditor.baseline import skipped

            out.append(skipped(check, baseline_reason))
    return out


def failing(results: list[CheckResult], fail_on: str = "error") -> list[CheckResult]:
    """Checks that make the run fail: error severity (and warnings with fail_on=warning)
    that failed or could not be evaluated; a skipped check never does."""
    severities = {"error"} if fail_on == "error" else {"error", "warning"}
    return [r for r in results if r.status in ("fail", "error") and r.severity in severities]
