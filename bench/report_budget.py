"""Report budget: render both formats of a 1,000-sample digits audit within 30 s, with
report.html under 8 MB and report.pdf under 15 MB (issue "Reports", "Budgets").

Usage: python bench/report_budget.py [--keep DIR]

The audit (6 explainers, a 48-sample gallery) runs once without a report; then
``auditor render RUN_DIR`` renders both formats in a fresh process, timed from start to
exit (imports included: what a user waits for), and once more in this process, timed by
stage. Exits 1 when a budget is missed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDITOR = Path(sys.executable).parent / "auditor"
BUDGET_SECONDS = 30.0
BUDGET_HTML_MB = 8.0
BUDGET_PDF_MB = 15.0
EXPLAINERS = (
    "[{type: saliency}, {type: input_x_gradient}, "
    "{type: integrated_gradients, params: {n_steps: 16}}, {type: guided_backprop}, "
    "{type: occlusion}, {type: gradcam, params: {layer: features.3}}]"
)


def make_run(out: Path) -> Path:
    args = [
        str(AUDITOR),
        "run",
        str(ROOT / "audits" / "digits_cnn.yaml"),
        "-q",
        "--out",
        str(out),
        "--run-id",
        "budget",
        "--set",
        "data.split=all",
        "--set",
        "data.slice.stop=1000",
        "--set",
        f"explainers={EXPLAINERS}",
        "--set",
        "report.gallery.samples=48",
        "--set",
        "report.formats=[]",
        "--set",
        "checks=[]",
    ]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode not in (0, 1):
        sys.exit(f"the audit failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    print(f"audit run (no report): {time.perf_counter() - start:.1f} s")
    return out / "digits-cnn" / "budget"


def staged(folder: Path) -> None:
    """Render again in this process, timing each stage (imports already done)."""
    from auditor.report.canvas import Canvas
    from auditor.report.pdf import write_pdf
    from auditor.report.render import render_html
    from auditor.report.view import draw, open_view
    from auditor.run_folder import RunFolder

    run = RunFolder.open(folder)
    marks = [("start", time.perf_counter())]
    view, src = open_view(run)
    marks.append(("view model (incl. colour scales)", time.perf_counter()))
    with Canvas(run) as canvas:
        draw(view, src, canvas)
    marks.append((f"figures ({len(canvas.images)} files)", time.perf_counter()))
    render_html(view, canvas.images, for_print=False)
    marks.append(("report.html", time.perf_counter()))
    write_pdf(run, render_html(view, canvas.images, for_print=True))
    marks.append(("report.pdf", time.perf_counter()))
    for (_, before), (name, after) in pairwise(marks):
        print(f"  {name:<34} {after - before:6.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the run folder here (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_run(args.keep or Path(tmp))
        start = time.perf_counter()
        proc = subprocess.run([str(AUDITOR), "render", str(folder)], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"auditor render failed:\n{proc.stdout}\n{proc.stderr}")
        html_mb = (folder / "report.html").stat().st_size / 1e6
        pdf_mb = (folder / "report.pdf").stat().st_size / 1e6
        pages = (
            subprocess.run(
                ["pdfinfo", str(folder / "report.pdf")], capture_output=True, text=True
            ).stdout
            if _has("pdfinfo")
            else ""
        )
        page_line = next((ln for ln in pages.splitlines() if ln.startswith("Pages:")), "")
        print(f"auditor render, both formats: {seconds:.1f} s (budget {BUDGET_SECONDS:.0f} s)")
        print(f"report.html: {html_mb:.2f} MB (budget {BUDGET_HTML_MB:.0f} MB)")
        print(f"report.pdf:  {pdf_mb:.2f} MB (budget {BUDGET_PDF_MB:.0f} MB) {page_line}")
        print("in-process stages:")
        staged(folder)
        ok = seconds < BUDGET_SECONDS and html_mb < BUDGET_HTML_MB and pdf_mb < BUDGET_PDF_MB
        print("within budget" if ok else "OVER BUDGET")
        return 0 if ok else 1


def _has(command: str) -> bool:
    from shutil import which

    return which(command) is not None


if __name__ == "__main__":
    sys.exit(main())
