"""Which explainers deserve belief on this model and slice, from the run's own measurements.

An explainer is judged by the faithfulness metrics the run measured for it, read from
results.json (nothing is recomputed):

- deletion (Petsiuk, Das, Saenko 2018, "RISE", https://arxiv.org/abs/1806.07421): removing
  the features it ranks first must lower the target's probability faster than removing them
  in a random order; ``gain = random_auc - auc`` > 0;
- insertion (same paper): revealing them first must raise it faster; ``gain = auc -
  random_auc`` > 0;
- infidelity (Yeh et al. 2019, https://arxiv.org/abs/1901.09392), lower is better;
- the model randomization sanity check (Adebayo et al. 2018,
  https://arxiv.org/abs/1810.03292): its maps must change when the model's weights are
  re-initialized (``values.passed`` = 1 when the similarity at the fully randomized model
  is below the metric's threshold).

"No better than random" is decided on the 95% interval of the explainer's AUC where the
run stored one (the random order's AUC inside or beyond it), else on the sign of the gain.
An explainer that fails the sanity check or does no better than random on deletion is
"do not rely on"; one that does no better than random on insertion only, "rely on with
care". Explainers are ranked: trusted ones by deletion gain (then insertion gain, then
infidelity), then those without a faithfulness measurement, then "do not rely on".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from auditor.results import ExplainerResult, Results

Verdict = Literal["rely", "care", "unmeasured", "avoid"]

#: The words a reader sees for each verdict, and its CSS class.
VERDICT_WORDS: dict[str, tuple[str, str]] = {
    "rely": ("rely on", "pass"),
    "care": ("rely on with care", "warn"),
    "unmeasured": ("not measured", "muted"),
    "avoid": ("do not rely on", "fail"),
}
TIER = {"rely": 0, "care": 0, "unmeasured": 1, "avoid": 2}
#: Faithfulness metrics that rank explainers (randomization_sanity only gates them).
FAITHFULNESS = ("deletion", "insertion", "infidelity")
_THRESHOLD = re.compile(r"(?:not )?below (-?[0-9.eE+-]+)\.?\s*$")


@dataclass(frozen=True)
class Perturbation:
    """Deletion or insertion of one explainer: its gain over a random order."""

    gain: float
    auc: float
    random_auc: float
    beats_random: bool
    how: str  # how "beats random" was decided: "95% interval" | "gain sign"


@dataclass(frozen=True)
class Sanity:
    """The randomization sanity check of one explainer."""

    status: Literal["passed", "failed", "not run", "error"]
    similarity: float | None = None  # Spearman at the fully randomized model
    threshold: str = ""  # "0.5", from the metric's note
    error: str = ""


@dataclass(frozen=True)
class Assessment:
    """What the run measured about one explainer's faithfulness, and the verdict."""

    id: str
    type: str
    scope: str
    deletion: Perturbation | None
    insertion: Perturbation | None
    infidelity: float | None
    sanity: Sanity
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        """Measured, and no measurement says not to rely on it."""
        return self.verdict in ("rely", "care")

    def sort_key(self) -> tuple[float, ...]:
        def neg(p: Perturbation | None) -> float:
            return -p.gain if p is not None and math.isfinite(p.gain) else math.inf

        infidelity = self.infidelity if self.infidelity is not None else math.inf
        return (TIER[self.verdict], neg(self.deletion), neg(self.insertion), infidelity)


def _record(e: ExplainerResult, metric: str) -> dict[str, Any] | None:
    record = e.metrics.get(metric)
    return record if isinstance(record, dict) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def perturbation(record: dict[str, Any] | None, *, lower_is_better: bool) -> Perturbation | None:
    """Deletion (``lower_is_better``) or insertion from its results.json record; None when
    it did not run or stored no gain."""
    if record is None or record.get("status", "ok") != "ok":
        return None
    values = record.get("values") or {}
    gain, auc, rand = (_number(values.get(k)) for k in ("gain", "auc", "random_auc"))
    if gain is None or auc is None or rand is None:
        return None
    ci = record.get("ci95")
    bounds = [_number(b) for b in ci] if isinstance(ci, list | tuple) and len(ci) == 2 else []
    if len(bounds) == 2 and None not in bounds:
        low, high = bounds
        beats = (high < rand) if lower_is_better else (low > rand)  # type: ignore[operator]
        how = "95% interval"
    else:
        beats, how = gain > 0, "gain sign"
    return Perturbation(gain, auc, rand, bool(beats and gain > 0), how)


def sanity(record: dict[str, Any] | None) -> Sanity:
    """The randomization sanity result: ``values.passed`` (1 or 0) and the final Spearman."""
    if record is None:
        return Sanity("not run")
    if record.get("status", "ok") != "ok":
        return Sanity("error", error=str(record.get("error") or record.get("status")))
    values = record.get("values") or {}
    passed = _number(values.get("passed"))
    similarity = _number(values.get("spearman_final", record.get("mean")))
    found = _THRESHOLD.search(str(record.get("note") or ""))
    threshold = found.group(1).rstrip(".") if found else ""
    if passed is None:
        return Sanity("error", similarity, threshold, "no pass/fail value stored")
    return Sanity("passed" if passed >= 0.5 else "failed", similarity, threshold)


def assess_one(e: ExplainerResult) -> Assessment:
    """Read one explainer's faithfulness measurements and decide the verdict."""
    deletion = perturbation(_record(e, "deletion"), lower_is_better=True)
    insertion = perturbation(_record(e, "insertion"), lower_is_better=False)
    infid = _record(e, "infidelity")
    infidelity = _number(infid.get("mean")) if infid and infid.get("status", "ok") == "ok" else None
    check = sanity(_record(e, "randomization_sanity"))
    avoid: list[str] = []
    care: list[str] = []
    if check.status == "failed" and check.similarity is None:
        avoid.append(
            "fails the randomization sanity check: the Spearman correlation of its maps "
            "before and after randomization is undefined (NaN: a map with no order to "
            "compare), so it cannot show that the maps depend on the model"
        )
    elif check.status == "failed":
        avoid.append(
            f"fails the randomization sanity check: its maps stay similar (Spearman "
            f"{check.similarity:.2f}"
            + (f", not below {check.threshold}" if check.threshold else "")
            + ") when the model's weights are randomized"
        )
    if deletion is not None and not deletion.beats_random:
        avoid.append(
            f"does no better than a random order on deletion (gain {deletion.gain:+.3f}"
            + (", within the noise" if deletion.how == "95% interval" and deletion.gain > 0 else "")
            + ")"
        )
    if insertion is not None and not insertion.beats_random:
        care.append(
            f"does no better than a random order on insertion (gain {insertion.gain:+.3f}"
            + (
                ", within the noise"
                if insertion.how == "95% interval" and insertion.gain > 0
                else ""
            )
            + ")"
        )
    if check.status == "error":
        care.append(f"its sanity check did not finish ({check.error})")
    measured = deletion is not None or insertion is not None or infidelity is not None
    verdict: Verdict
    if avoid:
        verdict, reasons = "avoid", avoid + care
    elif not measured:
        verdict = "unmeasured"
        reasons = [
            "no deletion, insertion or infidelity was measured for it"
            if e.scope == "local"
            else "a global explainer: deletion and insertion measure local attributions"
        ]
    elif care:
        verdict, reasons = "care", care
    else:
        verdict, reasons = "rely", []
    if verdict in ("rely", "care") and check.status == "not run":
        reasons.append("its randomization sanity check was not run")
    return Assessment(
        e.id, e.type, e.scope, deletion, insertion, infidelity, check, verdict, reasons
    )


def assess(results: Results) -> list[Assessment]:
    """Every finished explainer, most faithful first (a stable order: ties keep spec order)."""
    found = [assess_one(e) for e in results.explainers.values() if e.status == "ok"]
    return sorted(found, key=Assessment.sort_key)


def measured_any(assessments: list[Assessment]) -> bool:
    """Whether the run measured any faithfulness metric at all."""
    return any(a.verdict != "unmeasured" or a.sanity.status != "not run" for a in assessments)
