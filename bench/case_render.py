"""Render time of a report, this checkout against a baseline checkout (issue 18: the
architecture diagram and the layers section may add at most 0.5 s; issue 17: the report of
bench/specs/digits_1000.yaml in at most 2.5 s).

Usage: python bench/case_render.py BASELINE_REPO [--pairs 3] [--spec audits/digits_cnn.yaml]

BASELINE_REPO is another checkout, with its own .venv (e.g. a clone of the commit before the
change, set up with `make install`) or without one: then this checkout's interpreter runs it
with PYTHONPATH=BASELINE_REPO (for a change inside the auditor package only). Each side runs
the spec (a path inside each checkout) once without a report, then `auditor render RUN_DIR`
(HTML and PDF, in a fresh process: what a user waits for) is timed in alternating pairs.
Prints a Markdown table, with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def auditor_of(repo: Path) -> tuple[list[str], dict[str, str]]:
    """The command that runs ``auditor`` from ``repo``, and its environment."""
    own = repo / ".venv" / "bin" / "auditor"
    if own.exists():
        return [str(own)], dict(os.environ)
    python = ROOT / ".venv" / "bin" / "python"
    return [str(python), "-m", "auditor"], {**os.environ, "PYTHONPATH": str(repo)}


def make_run(repo: Path, spec: str, out: Path) -> Path:
    command, env = auditor_of(repo)
    args = [*command, "run", str(repo / spec), "-q", "--out", str(out), "--run-id", "r"]
    subprocess.run([*args, "--set", "report.formats=[]"], check=False, capture_output=True, env=env)
    return next(out.glob("*/r"))


def render_seconds(repo: Path, folder: Path) -> float:
    command, env = auditor_of(repo)
    start = time.perf_counter()
    subprocess.run([*command, "render", str(folder)], check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("baseline", type=Path)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--spec", default="audits/digits_cnn.yaml", help="inside each checkout")
    args = parser.parse_args()
    load_before = os.getloadavg()
    sides = {"baseline": args.baseline.resolve(), "this checkout": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {
            name: make_run(repo, args.spec, Path(tmp) / name.replace(" ", "_"))
            for name, repo in sides.items()
        }
        times: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.pairs):
            for name, repo in sides.items():
                times[name].append(render_seconds(repo, folders[name]))
        pages = {}
        for name, folder in folders.items():
            info = subprocess.run(
                ["pdfinfo", str(folder / "report.pdf")], capture_output=True, text=True
            )
            pages[name] = next(
                (
                    line.split()[-1]
                    for line in info.stdout.splitlines()
                    if line.startswith("Pages:")
                ),
                "?",
            )
    print(f"| side | render (median of {args.pairs}, s) | all runs (s) | PDF pages |")
    print("|---|---|---|---|")
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {statistics.median(values):.2f} | {shown} | {pages[name]} |")
    growth = statistics.median(times["this checkout"]) - statistics.median(times["baseline"])
    print(f"\ngrowth: {growth:+.2f} s")
    load = ", ".join(f"{x:.2f}" for x in (*load_before, *os.getloadavg()))
    print(f"load average before (1, 5, 15 min) and after: {load}")


if __name__ == "__main__":
    main()
