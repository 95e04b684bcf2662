"""Peak resident memory of `auditor run` on the digits audit at several slice sizes.

Usage: python bench/peak_rss.py [N ...]   (default: 200 1600)

Each run is its own process; its peak RSS comes from os.wait4's rusage (ru_maxrss, KiB
on Linux), so runs do not see each other's peaks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUDITOR = Path(sys.executable).parent / "auditor"


def peak_rss_mb(samples: int, out: Path, formats: str = "[]") -> tuple[float, float, int]:
    """(peak RSS in MB, seconds, exit code) of one digits audit over ``samples`` samples."""
    args = [
        str(AUDITOR),
        "run",
        str(ROOT / "audits" / "digits_cnn.yaml"),
        "-q",
        "--out",
        str(out),
        "--run-id",
        f"n{samples}",
        "--set",
        "data.split=all",
        "--set",
        f"data.slice.stop={samples}",
        "--set",
        f"report.formats={formats}",
        # explainers only: metrics look at a fixed number of samples and would hide the trend
        *("--set", "metrics=[]", "--set", "checks=[]"),
        # two streaming local explainers are what the memory claim is about
        *(
            "--set",
            "explainers=[{type: saliency}, {type: integrated_gradients, params: {n_steps: 8}}]",
        ),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 and proc.stderr is not None:
        sys.stderr.write(proc.stderr.read().decode())
    return usage.ru_maxrss / 1024, seconds, proc.returncode


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'samples':>8} {'peak RSS MB':>12} {'seconds':>8}")
        for n in sizes:
            rss, seconds, code = peak_rss_mb(n, Path(tmp))
            print(f"{n:>8} {rss:>12.1f} {seconds:>8.1f}" + ("" if code == 0 else f"  exit {code}"))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [200, 1600])
