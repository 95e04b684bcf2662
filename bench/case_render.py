"""Render time of a report, this checkout against a baseline checkout (issue 18: the
architecture diagram and the layers section may add at most 0.5 s; issue 17: the report of
bench/specs/digits_1000.yaml in at most 2.5 s).

Usage: python bench/case_render.py BASELINE_REPO [--pairs 3] [--spec audits/digits_cnn.yaml]

BASELINE_REPO is another checkout, with its own .venv (e.g. a clone of the commit before the
change, set up with `make install`) or without one (e.g. `git archive COMMIT auditor templates
| tar -x -C DIR`): then this checkout's interpreter runs it (for a change inside the auditor
package and templates only). PYTHONPATH alone would not do: this checkout's editable install
puts an import finder before the path, so both sides would run this checkout's code. A
``sitecustomize`` shim removes that finder and puts BASELINE_REPO first, in the CLI process
and in the PDF worker it starts; every command runs in a neutral folder (``python -c`` and
``-m`` put the working folder first on the path). Each side runs the spec (a path inside
each checkout) once without a report, then `auditor render RUN_DIR` (HTML and PDF, in a
fresh process: what a user waits for) is timed in alternating pairs: wall time, and CPU
time (user + system) of the process and its children. Prints a Markdown table, with the
load average before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Imported at start-up by every interpreter with the shim's folder on PYTHONPATH (after
#: the .pth files that install the editable finder): ``auditor`` comes from BASELINE_REPO.
SHIM = """import os, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")
                    and "editable" not in getattr(f, "__name__", "")]
sys.path.insert(0, os.environ["AUDITOR_BASELINE"])
"""


def auditor_of(repo: Path, shim: Path) -> tuple[list[str], dict[str, str]]:
    """The command that runs ``auditor`` from ``repo``, and its environment (``shim``: a
    folder for the ``sitecustomize`` that makes this checkout's interpreter run ``repo``)."""
    own = repo / ".venv" / "bin" / "auditor"
    if own.exists():
        return [str(own)], dict(os.environ)
    (shim / "sitecustomize.py").write_text(SHIM, encoding="utf-8")
    python = ROOT / ".venv" / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": str(shim), "AUDITOR_BASELINE": str(repo)}
    return [str(python), "-m", "auditor"], env


def make_run(repo: Path, spec: str, out: Path, shim: Path) -> Path:
    command, env = auditor_of(repo, shim)
    args = [*command, "run", str(repo / spec), "-q", "--out", str(out), "--run-id", "r"]
    subprocess.run(
        [*args, "--set", "report.formats=[]"], check=False, capture_output=True, env=env, cwd=shim
    )
    return next(out.glob("*/r"))


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def render_seconds(repo: Path, folder: Path, shim: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``auditor render FOLDER`` (the CLI and its PDF worker)."""
    command, env = auditor_of(repo, shim)
    cpu, start = children_cpu(), time.perf_counter()
    subprocess.run(
        [*command, "render", str(folder)], check=True, capture_output=True, env=env, cwd=shim
    )
    return time.perf_counter() - start, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("baseline", type=Path)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--spec", default="audits/digits_cnn.yaml", help="inside each checkout")
    args = parser.parse_args()
    load_before = os.getloadavg()
    sides = {"baseline": args.baseline.resolve(), "this checkout": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        shim = Path(tmp) / "shim"
        shim.mkdir()
        folders = {
            name: make_run(repo, args.spec, Path(tmp) / name.replace(" ", "_"), shim)
            for name, repo in sides.items()
        }
        times: dict[str, list[float]] = {name: [] for name in sides}
        cpus: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.pairs):
            for name, repo in sides.items():
                wall, cpu = render_seconds(repo, folders[name], shim)
                times[name].append(wall)
                cpus[name].append(cpu)
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
    print(
        f"| side | render wall (median of {args.pairs}, s) | all runs (s) "
        "| CPU, process + children (median, s) | PDF pages |"
    )
    print("|---|---|---|---|---|")
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        cpu = statistics.median(cpus[name])
        print(f"| {name} | {statistics.median(values):.2f} | {shown} | {cpu:.2f} | {pages[name]} |")
    growth = statistics.median(times["this checkout"]) - statistics.median(times["baseline"])
    print(f"\ngrowth: {growth:+.2f} s")
    load = ", ".join(f"{x:.2f}" for x in (*load_before, *os.getloadavg()))
    print(f"load average before (1, 5, 15 min) and after: {load}")


if __name__ == "__main__":
    main()
