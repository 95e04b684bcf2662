"""Run the benchmarks of issue 6 and write bench/RESULTS.md (and bench/results.json).

Usage:
    python bench/run_all.py                 # every case, >= 5 alternating runs (~75 min on 2 cores)
    python bench/run_all.py --smoke         # tiny sizes, 1 run each, for CI (< 60 s)
    python bench/run_all.py --cases 1,shap  # of: 1 2 3 4 shap passes text history adaptive
                                            #     workload wide recommendation e2e17 ray
    python bench/run_all.py --cases 4 --update   # rerun case 4, keep the others' sections

RESULTS.md sections that no case writes (measured by hand) are kept, marked as such; a
hand-measured "Case <name>: ..." section is replaced when that case runs.

Benchmarks are not tests: the process exits 0 whether or not a target is met (non-zero only
when a case crashes). ``--smoke`` writes to a temporary folder (or ``--out``) and prints the
results, so that CI does not overwrite the committed RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import BENCH, Section, load_average, log, machine, package_versions, table, verdict

CASE_ORDER = (
    "1", "2", "shap", "3", "4", "passes", "text", "history", "adaptive", "workload", "wide",
    "recommendation", "e2e17", "ray",
)  # fmt: skip


def cases(smoke: bool, runs: int) -> dict[str, Callable[[], Section]]:
    """Each case with its sizes: the issue's, or tiny ones for --smoke.

    A case's module is imported only when it runs, so that a machine without shap (say) can
    still run case 3.
    """

    def case(module: str, function: str = "run", **sizes: Any) -> Callable[[], Section]:
        return lambda: getattr(importlib.import_module(module), function)(runs, **sizes)

    if smoke:
        return {
            "1": case("case_end_to_end", samples=32, formats="html"),
            "2": case("case_overhead", batch=16, stage_samples=32, budget=0.02),
            "shap": case("case_shap", samples=2),
            "3": case(
                "case_resnet",
                size=32,
                steps=4,
                images={"integrated_gradients": 1, "gradcam": 2, "occlusion": 1},
            ),
            "4": case("case_scaling", sizes=(32, 64), formats="", metrics=False),
            "passes": case("case_passes", scale=1 / 64),
            "text": case("case_text", samples=8, nsamples=64),
            "history": case("case_history", sizes=(10, 1_000, 10_000), calls=20),
            "adaptive": case("case_adaptive_ig", samples=32, reference=64, scan=40, resnet={}),
            "workload": case("case_workload", samples=100),
            "wide": case(
                "case_wide", samples=8, features=100, reference_samples=2, reference_nsamples=2000
            ),
            "recommendation": case("case_recommendation", interactions=500),
            "e2e17": case("case_end_to_end", "run_workload17", samples=32, formats="html"),
            "ray": case("case_ray", images=2),
        }
    return {
        "1": case("case_end_to_end"),
        "2": case("case_overhead"),
        "shap": case("case_shap"),
        "3": case("case_resnet"),
        "4": case("case_scaling"),
        "passes": case("case_passes"),
        "text": case("case_text"),
        "history": case("case_history"),
        # resnet18 at the 32 images x 224 px takes hours on 2 CPU cores: 4 x 64 px here,
        # `python bench/case_adaptive_ig.py` (its defaults) on a machine with a GPU.
        "adaptive": case(
            "case_adaptive_ig",
            resnet={"images": 4, "size": 64, "fixed": [16, 32, 64], "reference": 256},
        ),
        "workload": case("case_workload"),
        "wide": case("case_wide"),
        "recommendation": case("case_recommendation"),
        "e2e17": case("case_end_to_end", "run_workload17"),
        "ray": case("case_ray", images=64),
    }


def header(args: argparse.Namespace, started: datetime, info: dict[str, Any]) -> str:
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in info["flags"].items())
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    command = "python bench/run_all.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    updated = (
        "\n- `--update`: only the cases named were rerun; each section says when it ran."
        if args.update
        else ""
    )
    return f"""# Benchmark results (issue 6)

Written by `{command.strip()}` (`make bench{"-smoke" if args.smoke else ""}` runs the full
set), started {started.isoformat(timespec="seconds")}. Benchmarks, not tests: ratios of
medians from one alternating run on this machine.

- Machine: {info["cpu"]}, {info["cores"]} cores available ({info["threads_per_core"]} thread
  per core), {info["memory_gib"]} GiB; torch threads {info["torch_threads"]}, torch CPU
  capability {info["torch_cpu_capability"]}; CPU flags: {flags}.
- Platform: {info["platform"]}, Python {info["python"]}.
- Versions: {versions}.
- Runs per variant: {args.runs}, alternating A B A B; medians compared (and, as a check
  that is less sensitive to other jobs, the ratio of the fastest runs).{updated}
- Machine load (1/5/15-min load average) is listed per case: other engineers ran tests on
  the same two cores during this run, so absolute times are noisy; ratios from alternating
  runs are the numbers to read.
"""


def summary(sections: list[Section]) -> str:
    rows = [
        [target, value, verdict(ok)]
        for section in sections
        for target, value, ok in section.targets
    ]
    return "## Targets\n\n" + table(["target", "measured", "verdict"], rows) + "\n"


def other_machines() -> str:
    """The targets measured on other machines (bench/machines/*.json, e.g. a CPU with AMX)."""
    rows = []
    for path in sorted((BENCH / "machines").glob("*.json")):
        data = json.loads(path.read_text())
        flags = data["machine"]["flags"]
        cpu = (f"{data['machine']['cores']} cores, AMX {'yes' if flags['amx_bf16'] else 'no'}, "
               f"torch {data['versions']['torch']}")  # fmt: skip
        for target, value, ok in data["targets"]:
            rows.append([f"[{path.stem}](machines/{path.with_suffix('.md').name})", cpu,
                         target, value, verdict(ok)])  # fmt: skip
    if not rows:
        return ""
    return (
        "## The same targets on other machines\n\nCases run elsewhere (each file says how); "
        "not rerun by this command.\n\n"
        + table(["file", "machine", "target", "measured", "verdict"], rows)
        + "\n"
    )


def previous(path: Path) -> dict[str, Section]:
    """Sections of an earlier run (``--update``), by case name."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {
        c: Section(v["title"], v["text"], v["raw"], [tuple(t) for t in v["targets"]])
        for c, v in data.get("cases", {}).items()
        if isinstance(v, dict) and "text" in v
    }


#: RESULTS.md's own sections, rewritten on every run.
GENERATED = ("Targets", "The same targets on other machines")
KEPT_NOTE = "_Kept from the previous RESULTS.md: measured by hand, not rerun by this command._"


def kept_sections(previous_text: str, sections: list[Section]) -> list[str]:
    """Sections of the previous RESULTS.md that this run does not produce (measurements made
    by hand, say), so that a rerun does not drop them: every ``## `` section except the
    generated ones, those with a title this run writes, and ``## Case <name>: ...`` ones
    whose case this run wrote (a hand-measured version of a case is replaced by the case)."""
    titles = {s.title for s in sections}
    cases = {s.title.split(":", 1)[0] for s in sections if s.title.startswith("Case ")}
    kept = []
    for part in ("\n" + previous_text).split("\n## ")[1:]:
        title, _, body = part.partition("\n")
        if title in GENERATED or title in titles:
            continue
        if title.startswith("Case ") and title.split(":", 1)[0] in cases:
            continue
        note = "" if KEPT_NOTE in body else f"\n{KEPT_NOTE}\n"
        kept.append(f"## {title}\n{note}{body.rstrip()}\n")
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="Tiny sizes, one run each.")
    parser.add_argument("--runs", type=int, default=None, help="Runs per variant (default 5).")
    parser.add_argument("--cases", default=",".join(CASE_ORDER), help="Comma-separated cases.")
    parser.add_argument("--out", type=Path, default=None, help="Where RESULTS.md goes.")
    parser.add_argument(
        "--update",
        action="store_true",
        help="Keep the other cases' sections from the previous results.json in --out.",
    )
    args = parser.parse_args()
    args.runs = args.runs or (1 if args.smoke else 5)
    warnings.filterwarnings("ignore", category=UserWarning)  # Captum's requires_grad notes
    chosen = [c for c in CASE_ORDER if c in args.cases.split(",")]
    out_dir = args.out or (Path(tempfile.mkdtemp(prefix="bench-")) if args.smoke else BENCH)
    out_dir.mkdir(parents=True, exist_ok=True)

    started = datetime.now(UTC)
    info = machine()
    runners = cases(args.smoke, args.runs)
    done: dict[str, Section] = previous(out_dir / "results.json") if args.update else {}
    failed = False
    for name in chosen:
        before = load_average()
        t0 = time.perf_counter()
        log(f"case {name} ... (load {before})")
        try:
            section = runners[name]()
        except Exception:
            failed = True
            section = Section(f"Case {name}: FAILED", f"```\n{traceback.format_exc()}\n```")
            log(f"case {name} failed:\n{traceback.format_exc()}")
        seconds = time.perf_counter() - t0
        section.text += (
            f"\n_Case run {datetime.now(UTC).isoformat(timespec='minutes')}, took "
            f"{seconds:.0f} s; load average before {before}, after {load_average()}._\n"
        )
        done[name] = section

    sections = [done[c] for c in CASE_ORDER if c in done]
    elsewhere = other_machines() if out_dir.resolve() == BENCH.resolve() else ""  # its links
    text = "\n".join([header(args, started, info), summary(sections), elsewhere]
                     + [s.markdown() for s in sections])  # fmt: skip
    results = out_dir / "RESULTS.md"
    if results.exists():  # keep what was measured by hand
        text = "\n".join([text, *kept_sections(results.read_text(), sections)])
    results.write_text(text)
    raw = {"machine": info, "versions": package_versions(), "runs": args.runs,
           "smoke": args.smoke,
           "cases": {c: {"title": s.title, "text": s.text, "raw": s.raw, "targets": s.targets}
                     for c, s in done.items()},
           "targets": [list(t) for s in sections for t in s.targets]}  # fmt: skip
    (out_dir / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    log(f"wrote {results}")
    if args.smoke:
        print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
