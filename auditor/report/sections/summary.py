"""Section: Summary: the verdict and why, the checks, the headline numbers."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.report.common import (
    STATUS_CLASS,
    VERDICT_WORD,
    fmt_num,
    fmt_seconds,
    fmt_value,
    short_sha,
)
from auditor.report.drivers import Drivers, drivers
from auditor.report.sections.base import Section
from auditor.report.source import ReportSource
from auditor.report.trust import VERDICT_WORDS, Assessment, Perturbation, measured_any
from auditor.results import ExplainerResult, Results
from auditor.suggest import join_names

#: What the summary tells a spec without faithfulness metrics to add.
FAITHFULNESS_ADVICE = """metrics:
  - type: deletion                # Petsiuk et al. 2018: most important first beats random?
  - type: insertion
  - type: randomization_sanity    # Adebayo et al. 2018: do the maps depend on the weights?
    explainers: [{explainers}]"""


@dataclass(frozen=True)
class CheckRow:
    name: str
    kind: str
    value: str
    threshold: str
    status: str  # PASS | FAIL | ERROR | SKIPPED
    status_class: str  # pass | fail | error | muted (skipped: neutral)
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
class TrustRow:
    """One explainer in the trust-first table."""

    rank: int
    id: str
    type: str
    verdict: str  # "rely on" | "rely on with care" | "not measured" | "do not rely on"
    verdict_class: str
    deletion: str  # gain over a random order, "—" when not measured
    deletion_detail: str  # "AUC 0.057 vs random 0.480"
    insertion: str
    insertion_detail: str
    infidelity: str
    sanity: str  # "passed", "failed", "not run", "error"
    sanity_detail: str  # "Spearman 0.29 < 0.5"
    sanity_class: str
    reasons: str


@dataclass(frozen=True)
class Trust:
    """Which explainers deserve belief: a sentence, a table, what drives the model."""

    measured: bool  # the run measured some faithfulness (else ``advice`` says what to add)
    sentence: str
    rows: list[TrustRow]
    has_insertion: bool
    has_infidelity: bool
    advice: str  # a spec snippet when nothing was measured
    drivers: Drivers | None


@dataclass(frozen=True)
class Summary:
    verdict: str  # PASS | FAIL | ERROR
    verdict_class: str  # pass | fail | error
    reasons: list[str]  # why the verdict is what it is, one line each
    warnings: list[WarningRow]  # health warnings, shown first in a warning box
    facts: list[Fact]
    checks: list[CheckRow]
    explainers: list[ExplainerRow]
    trust: Trust


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
    skipped = [c for c in checks if c.status == "SKIPPED"]
    for c in checks:
        if c.status in ("FAIL", "ERROR"):
            warn = " (warning)" if c.severity == "warning" else ""
            verb = "failed" if c.status == "FAIL" else "could not be evaluated"
            reasons.append(f"check {c.name} {verb}{warn}: {c.reason}")
    if not reasons:
        reasons.append(_all_passed(len(checks), len(skipped)))
    # a skipped check (a baseline check without a baseline run) is not a failure: said
    # after the verdict's reasons, never instead of them
    reasons += [f"check {c.name} skipped: {c.reason}" for c in skipped]
    reasons += [f"health warning: {w.message}" for w in r.warnings]
    return [r[:1].upper() + r[1:] for r in reasons]


def _all_passed(checks: int, skipped: int) -> str:
    """The reason of a verdict with no failure: every evaluated check passed."""
    if not checks:
        return "the spec defines no checks; every explainer finished"
    if not skipped:
        return f"all {checks} checks passed and every explainer finished"
    if skipped == checks:
        return f"every explainer finished; all {checks} checks were skipped"
    return (
        f"all {checks - skipped} evaluated checks passed ({skipped} skipped) and every "
        "explainer finished"
    )


def checks_fact(results: Results) -> Fact:
    """The Checks fact, e.g. 3 of 4 passed, 1 skipped (no baseline run): red only for a
    check that failed or could not be evaluated, not for a skipped one."""
    total = len(results.checks)
    if not total:
        return Fact("Checks", "none defined")
    passed = sum(1 for c in results.checks if c.status == "pass")
    skipped = sum(1 for c in results.checks if c.status == "skipped")
    failed = total - passed - skipped
    detail = [f"{failed} not passed"] if failed else []
    if skipped:
        detail.append(f"{skipped} skipped (no baseline run)")
    return Fact(
        "Checks", f"{passed} of {total} passed", ", ".join(detail), "fail" if failed else ""
    )


def ray_note(e: ExplainerResult) -> str:
    """On Ray (``runner.backend: ray``): the workers, and the start-up the time includes
    (the time per sample leaves it out)."""
    ray = e.extra.get("ray")
    if not isinstance(ray, dict):
        return ""
    text = f"On {ray.get('workers')} Ray worker(s)"
    startup = ray.get("startup_seconds") or 0.0
    if startup:
        text += f"; the time includes {fmt_seconds(startup)} of start-up"
    return text + "."


def steps_note(e: ExplainerResult) -> str:
    """Integrated Gradients with ``n_steps: auto``: the steps its samples took, and how many
    stopped above the tolerance (from its per-sample ``steps`` and ``above_tolerance``)."""
    steps, above = e.stats.get("steps"), e.stats.get("above_tolerance")
    if steps is None or not steps.n or steps.mean is None or steps.max is None:
        return ""
    total = round(steps.mean * steps.n)
    text = (
        f"n_steps auto: {total:,} gradient evaluations, {steps.mean:.3g} steps per sample "
        f"(max {steps.max:.0f})."
    )
    count = round((above.mean or 0.0) * above.n) if above is not None else 0
    if count:
        text += (
            f" {count} sample{'s' if count > 1 else ''} stopped at {steps.max:.0f} steps "
            "above the tolerance: raise max_steps."
        )
    return text


def budget_note(e: ExplainerResult) -> str:
    """KernelSHAP: its sampling budget (coalitions per sample) and additivity error (the
    largest |sum of attributions - (f(x) - E[f(background)])|, ``convergence_delta``)."""
    budget, gap = e.stats.get("coalitions"), e.stats.get("convergence_delta")
    if budget is None or budget.mean is None:
        return ""
    text = f"{budget.mean:,.0f} coalitions per sample"
    if budget.max is not None and budget.min is not None and budget.max != budget.min:
        text = f"{budget.min:,.0f}-{budget.max:,.0f} coalitions per sample"
    if gap is not None and gap.min is not None and gap.max is not None:
        text += f"; additivity error at most {max(abs(gap.min), abs(gap.max)):.2g}"
    return text + "."


def build(src: ReportSource) -> Summary:
    r = src.results
    checks = [
        CheckRow(
            name=c.name,
            kind=c.kind,
            value=fmt_value(short_sha(c.value)),
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
            note=" ".join(
                filter(
                    None,
                    [
                        f"reused from {e.reused}" if e.reused else e.error,
                        steps_note(e),
                        budget_note(e),
                        ray_note(e),
                    ],
                )
            ),
        )
        for e in r.explainers.values()
    ]
    ok = sum(1 for e in r.explainers.values() if e.status == "ok")
    failed = sum(1 for e in r.explainers.values() if e.status == "failed")
    skipped = len(r.explainers) - ok - failed
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
        checks_fact(r),
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
        trust=trust(src),
    )


def _gain(p: Perturbation | None) -> tuple[str, str]:
    if p is None:
        return "—", ""
    return f"{p.gain:+.3f}", f"AUC {fmt_num(p.auc, 3)} vs random {fmt_num(p.random_auc, 3)}"


def _row(rank: int, a: Assessment) -> TrustRow:
    word, css = VERDICT_WORDS[a.verdict]
    s = a.sanity
    if s.status in ("passed", "failed") and s.similarity is not None:
        sign = "<" if s.status == "passed" else "≥"
        detail = f"Spearman {s.similarity:.2f}" + (f" {sign} {s.threshold}" if s.threshold else "")
    elif s.status == "failed":
        detail = "Spearman undefined (NaN)"
    else:
        detail = s.error
    deletion, deletion_detail = _gain(a.deletion)
    insertion, insertion_detail = _gain(a.insertion)
    return TrustRow(
        rank=rank,
        id=a.id,
        type=a.type,
        verdict=word,
        verdict_class=css,
        deletion=deletion,
        deletion_detail=deletion_detail,
        insertion=insertion,
        insertion_detail=insertion_detail,
        infidelity=fmt_num(a.infidelity, 3),
        sanity=s.status,
        sanity_detail=detail,
        sanity_class={"passed": "pass", "failed": "fail", "error": "error"}.get(s.status, "muted"),
        reasons="; ".join(a.reasons),
    )


def _why_best(a: Assessment) -> str:
    if a.deletion is not None:
        return (
            f"removing the features it ranks first lowers the prediction fastest (deletion "
            f"gain {a.deletion.gain:.3f} over a random order)"
        )
    if a.insertion is not None:
        return f"insertion gain {a.insertion.gain:.3f} over a random order"
    return f"the lowest infidelity ({fmt_num(a.infidelity, 3)})"


def trust_sentence(assessments: list[Assessment]) -> str:
    """The summary's sentence: whom to believe most, whom not at all, who was not measured."""
    trusted = [a for a in assessments if a.trusted]
    avoid = [a for a in assessments if a.verdict == "avoid"]
    unmeasured = [a.id for a in assessments if a.verdict == "unmeasured"]
    parts = []
    if trusted:
        best = trusted[0]
        parts.append(f"On this model and slice, {best.id} deserves most belief: {_why_best(best)}.")
        rest = [a.id + (" (with care)" if a.verdict == "care" else "") for a in trusted[1:]]
        if rest:
            parts.append(f"Then, in order: {join_names(rest, 8)}.")
    else:
        parts.append("On this model and slice, no explainer passed its faithfulness tests.")
    passed = [a.id for a in assessments if a.sanity.status == "passed"]
    failed = [a.id for a in assessments if a.sanity.status == "failed"]
    if passed or failed:
        said = []
        if passed:
            said.append(f"passed for {join_names(passed, 8)}")
        if failed:
            said.append(f"failed for {join_names(failed, 8)}")
        untested = [a.id for a in trusted if a.sanity.status == "not run"]
        tail = f" (not run for {join_names(untested, 8)})" if untested else ""
        parts.append(f"The randomization sanity check {' and '.join(said)}{tail}.")
    elif trusted:
        parts.append(
            "No randomization sanity check was run (add randomization_sanity to the spec's "
            "metrics to test that the maps depend on the model's weights)."
        )
    for a in avoid:
        parts.append(f"Do not rely on {a.id}: it {'; '.join(a.reasons)}.")
    if unmeasured:
        many = len(unmeasured) > 1
        parts.append(
            f"{join_names(unmeasured, 8)} {'were' if many else 'was'} not measured for "
            "faithfulness."
        )
    return " ".join(parts)


def trust(src: ReportSource) -> Trust:
    """The trust-first summary: the explainers ranked by measured faithfulness."""
    assessments = src.trust
    if not measured_any(assessments):
        local = [a.id for a in assessments if a.scope == "local"] or ["<explainer ids>"]
        return Trust(
            measured=False,
            sentence=(
                "The run measured no faithfulness metric, so this report cannot say which "
                "explainer deserves belief: their maps may be plausible-looking and still not "
                "reflect the model. Add these metrics to the spec to rank them:"
            ),
            rows=[],
            has_insertion=False,
            has_infidelity=False,
            advice=FAITHFULNESS_ADVICE.format(explainers=", ".join(local)),
            drivers=None,
        )
    rows = [_row(i + 1, a) for i, a in enumerate(assessments)]
    return Trust(
        measured=True,
        sentence=trust_sentence(assessments),
        rows=rows,
        has_insertion=any(a.insertion is not None for a in assessments),
        has_infidelity=any(a.infidelity is not None for a in assessments),
        advice="",
        drivers=drivers(src, assessments) if any(a.trusted for a in assessments) else None,
    )


SECTION = Section("summary", "Summary", build, badge=lambda s: (s.verdict, s.verdict_class))
