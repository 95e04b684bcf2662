"""Case 1: the digits audit end to end, ``auditor run`` against the hand-written script.

Both run as child processes (interpreter start and imports included, as for a user), in
turn A B A B; each round writes its own folder. Afterwards the last round's attributions
are compared: the deterministic explainers within 1e-5, GradientSHAP (stochastic, drawn
per sample by auditor and per batch by the script) by per-sample Spearman.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    AUDITOR,
    BENCH,
    PYTHON,
    Section,
    Timed,
    alternate_children,
    log,
    per_sample_spearman,
    ratio,
    spread_text,
    table,
)

SPEC = BENCH / "specs" / "digits_1000.yaml"
HAND = BENCH / "hand_script.py"
DETERMINISTIC = ("saliency", "integrated_gradients", "occlusion", "gradcam")
LOCAL = (*DETERMINISTIC[:2], "gradient_shap", *DETERMINISTIC[2:])
TOLERANCE = 1e-5
REPORT_NOTE = (
    "The hand script's HTML inlines 12 matplotlib figures and its PDF is matplotlib's "
    "PdfPages of the same figures; auditor's PDF is its whole HTML report laid out by "
    "weasyprint. Its report time is measured from the files' times (results.json to the "
    "last report file). The child's wall time minus the in-process total is start-up and "
    "imports (plus auditor's report)."
)


def metrics_available() -> tuple[bool, str]:
    """Whether the spec's metric plugins load; they were being written alongside this."""
    try:
        from auditor import registries

        for name in ("deletion", "randomization_sanity"):
            registries.metrics.get(name)
    except Exception as exc:  # any import or registration failure: run without metrics
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def commands(out: Path, samples: int, with_metrics: bool, formats: str) -> dict[str, Any]:
    def auditor(folder: str, report: str) -> Callable[[int], list[str | Path]]:
        sets = [f"data.slice.stop={samples}", f"report.formats=[{report}]"]
        sets += [] if with_metrics else ["metrics=[]"]
        flags = [a for o in sets for a in ("--set", o)]
        return lambda r: [AUDITOR, "run", SPEC, "-q", "--out", out / folder, "--run-id",
                          f"r{r}", *flags]  # fmt: skip

    def hand(folder: str, report: str) -> Callable[[int], list[str | Path]]:
        tail = ["--formats", report.replace(" ", "")] + ([] if with_metrics else ["--no-metrics"])
        return lambda r: [PYTHON, HAND, "--samples", str(samples), "--out", out / folder / f"r{r}",
                          *tail]  # fmt: skip

    return {
        "auditor": auditor("auditor", formats),
        "hand": hand("hand", formats),
        "auditor, no report": auditor("bare", ""),
        "hand, no report": hand("hand-bare", ""),
        "python -c 'import torch'": lambda r: [PYTHON, "-c", "import torch"],
    }


def compare(run_dir: Path, hand_dir: Path) -> tuple[list[list[Any]], dict[str, Any], bool]:
    results = json.loads((run_dir / "results.json").read_text())
    summary = json.loads((hand_dir / "summary.json").read_text())
    hand_rows = {row["name"]: row for row in summary["rows"]}
    rows, raw, all_close = [], {}, True
    for name in LOCAL:
        ours = np.load(run_dir / "attributions" / f"{name}.npy")
        theirs = np.load(hand_dir / "attributions" / f"{name}.npy")
        entry = results["explainers"][name]
        deletion = entry.get("metrics", {}).get("deletion", {}).get("values", {})
        sanity = entry.get("metrics", {}).get("randomization_sanity", {}).get("values", {})
        if name in DETERMINISTIC:
            diff = float(np.abs(ours - theirs).max())
            all_close &= diff <= TOLERANCE
            agreement = f"max abs diff {diff:.1e}"
            raw[name] = {"max_abs_diff": diff}
        else:
            rho = per_sample_spearman(ours, theirs)
            agreement = "Spearman " + spread_text(rho)
            raw[name] = {"spearman_median": float(np.nanmedian(rho))}
        rows.append(
            [
                name,
                agreement,
                f"{deletion.get('auc', float('nan')):.4f} / {hand_rows[name]['auc']:.4f}",
                f"{sanity.get('spearman_final', float('nan')):.3f} / {hand_rows[name]['rho']:.3f}",
            ]
        )
    return rows, raw, all_close


def breakdown(out: Path, runs: int) -> str:
    """Median seconds per part, from auditor's results.json and the script's summary.json."""
    ours: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    for r in range(runs):
        run_dir = out / "auditor" / SPEC_NAME / f"r{r}"
        results = json.loads((run_dir / "results.json").read_text())
        stages = results["provenance"]["stage_seconds"]
        explainers = results["explainers"]
        for k, v in explainers.items():
            ours.setdefault(k, []).append(v.get("seconds") or 0.0)
        metric_seconds = [
            rec.get("seconds") or 0.0 for v in explainers.values() for rec in v["metrics"].values()
        ]
        ours.setdefault("metrics", []).append(sum(metric_seconds))
        ours.setdefault("report", []).append(render_seconds(run_dir, stages))
        ours.setdefault("total", []).append(results["provenance"]["seconds"])
        summary = json.loads((out / "hand" / f"r{r}" / "summary.json").read_text())
        for k, v in summary["seconds"].items():
            theirs.setdefault(k, []).append(v)
    names = [*explainer_names(out), "metrics", "report", "total"]
    labels = {
        "metrics": "metrics (all)",
        "report": "report (HTML + PDF)",
        "total": "in-process total (auditor: up to the report; hand script: with it)",
    }
    rows = [[labels.get(k, k), _med(ours.get(k)), _med(theirs.get(k))] for k in names]
    return table(["part", "auditor median s", "hand script median s"], rows)


def render_seconds(run_dir: Path, stages: dict[str, float]) -> float:
    """The render stage ends after results.json is written: time it by the files' mtimes."""
    if "render" in stages:
        return stages["render"]
    reports = [p.stat().st_mtime for p in run_dir.glob("report.*")]
    return max(reports) - (run_dir / "results.json").stat().st_mtime if reports else 0.0


def explainer_names(out: Path) -> list[str]:
    results = json.loads((out / "auditor" / SPEC_NAME / "r0" / "results.json").read_text())
    return list(results["explainers"])


SPEC_NAME = "bench-digits-1000"


def _med(values: list[float] | None) -> str:
    return f"{np.median(values):.3f}" if values else "-"


def floor_text(timed: dict[str, Timed]) -> str:
    """What 2x would need, against what runs without any report and what importing costs."""
    a, h = timed["auditor"], timed["hand"]
    bare, hand_bare = timed["auditor, no report"], timed["hand, no report"]
    torch_import = timed["python -c 'import torch'"]
    return (
        f"2x means {h.median / 2:.2f} s. Without writing any report, auditor takes "
        f"{bare.median:.2f} s ({h.median / bare.median:.2f}x the hand script with its "
        f"report, {hand_bare.median / bare.median:.2f}x the hand script without one); "
        f"`import torch` alone takes {torch_import.median:.2f} s. auditor's report costs "
        f"{a.median - bare.median:.2f} s, the hand script's {h.median - hand_bare.median:.2f} s "
        "(without a report auditor imports neither its report code nor weasyprint; the hand "
        "script imports matplotlib and jinja2 either way and only skips drawing and writing)."
    )


def run(runs: int, samples: int = 1000, formats: str = "html, pdf") -> Section:
    with_metrics, why = metrics_available()
    if not with_metrics:
        log(f"case 1: metrics unavailable, running without them ({why})")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cmds = commands(out, samples, with_metrics, formats)
        timed: dict[str, Timed] = alternate_children(cmds, runs)
        last = runs - 1
        rows, raw, close = compare(
            out / "auditor" / SPEC_NAME / f"r{last}", out / "hand" / f"r{last}"
        )
        parts = breakdown(out, runs)
        shown = {k: [str(a).replace(tmp, "TMP") for a in make(0)] for k, make in cmds.items()}
    a, h = timed["auditor"], timed["hand"]
    speedup = ratio(h, a)
    log(f"case 1: auditor {a.median:.2f}s hand {h.median:.2f}s speedup {speedup:.2f}x")
    note = "" if with_metrics else f"\n\n**Metrics were not available** ({why}); both ran without."
    listing = "\n".join(f"    {shlex.join(argv)}" for argv in shown.values())
    text = f"""Commands (round 0; `r0` becomes `r1`, ... in later rounds; TMP is a temp folder):

{listing}

{runs} alternating runs of each of the {len(shown)} variants (in the order listed, then
again), wall time of the child process including interpreter start and imports, and its
peak RSS.{note}

{table(["variant", "median s", "min..max s", "median peak RSS MB"],
       [[k, f"{t.median:.2f}", t.spread, f"{t.median_rss:.0f}"] for k, t in timed.items()])}

**Speedup of auditor over the hand-written script: {speedup:.2f}x** (target: >= 2x; ratio
of the fastest runs, less sensitive to other jobs on the machine: {h.minimum / a.minimum:.2f}x).

{floor_text(timed)}

Agreement of the last round's outputs (auditor / hand for the metrics):

{table(["explainer", "attributions", "deletion AUC", "randomization Spearman (final)"], rows)}

Where the time goes (medians over the rounds; auditor's explainer seconds include writing
and ranking the attributions):

{parts}

{REPORT_NOTE}
"""  # fmt: skip
    targets = [
        ("end to end: auditor >= 2x faster than the hand script", f"{speedup:.2f}x", speedup >= 2),
        (
            f"end to end: deterministic attributions equal within {TOLERANCE:g}",
            ", ".join(
                f"{k} {v['max_abs_diff']:.1e}" for k, v in raw.items() if "max_abs_diff" in v
            ),
            close,
        ),
    ]
    raw_all = {"auditor": a.seconds, "hand": h.seconds, "rss_auditor": a.rss_mb,
               "rss_hand": h.rss_mb, "agreement": raw, "metrics": with_metrics,
               "seconds": {k: t.seconds for k, t in timed.items()}}  # fmt: skip
    return Section("Case 1: end to end, auditor vs hand-written script", text, raw_all, targets)
