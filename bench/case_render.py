"""Render time of the demo report, this checkout against a baseline checkout (issue 18:
the architecture diagram and the layers section may add at most 0.5 s).

Usage: python bench/case_render.py BASELINE_REPO [--pairs 3]

BASELINE_REPO is another checkout with its own .venv (e.g. a clone of the commit before the
change, set up with `make install`). Each side runs audits/digits_cnn.yaml once without a
report, then `auditor render RUN_DIR` (HTML and PDF, in a fresh process: what a user waits
for) is timed in alternating pairs. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_run(repo: Path, out: Path) -> Path:
    auditor = repo / ".venv" / "bin" / "auditor"
    spec = repo / "audits" / "digits_cnn.yaml"
    args = [str(auditor), "run", str(spec), "-q", "--out", str(out), "--run-id", "r"]
    subprocess.run([*args, "--set", "report.formats=[]"], check=False, capture_output=True)
    return out / "digits-cnn" / "r"


def render_seconds(repo: Path, folder: Path) -> float:
    auditor = repo / ".venv" / "bin" / "auditor"
    start = time.perf_counter()
    subprocess.run([str(auditor), "render", str(folder)], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("baseline", type=Path)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    sides = {"baseline": args.baseline.resolve(), "this checkout": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        folders = {
            name: make_run(repo, Path(tmp) / name.replace(" ", "_")) for name, repo in sides.items()
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


if __name__ == "__main__":
    main()
