"""Shared pieces of the benchmarks: alternating timings, child processes, machine facts.

Timing rule (issue 6): the variants of a comparison run alternately, A B A B ..., at least
five times each after one untimed warm-up, and are compared by their medians, so that a
drift in machine load (other jobs on the same cores) hits every variant alike.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = Path(os.path.normpath(sys.executable))  # not resolve(): that leaves the venv
AUDITOR = PYTHON.parent / "auditor"
PACKAGES = (
    "auditor",
    "torch",
    "torchvision",
    "captum",
    "shap",
    "scikit-learn",
    "numpy",
    "scipy",
    "matplotlib",
    "jinja2",
    "weasyprint",
)


# -- timing -------------------------------------------------------------------------------
@dataclass
class Timed:
    """Seconds of each run of one variant (and peak RSS of each run, for child processes)."""

    name: str
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def spread(self) -> str:
        """min..max of the runs, for the tables."""
        if not self.seconds:
            return "-"
        return f"{min(self.seconds):.3g}..{max(self.seconds):.3g}"

    @property
    def minimum(self) -> float:
        return min(self.seconds) if self.seconds else float("nan")

    @property
    def median_rss(self) -> float:
        return statistics.median(self.rss_mb) if self.rss_mb else float("nan")


def alternate(
    variants: dict[str, Callable[[], Any]], runs: int, warmup: int = 1, inner: int = 1
) -> dict[str, Timed]:
    """Run the variants in turn (A B A B ...), ``runs`` timed rounds after ``warmup`` rounds.

    With ``inner`` > 1 a timed run calls the variant that many times and records the mean,
    so that millisecond calls are not drowned by timer and scheduler noise.
    """
    timed = {name: Timed(name) for name in variants}
    for round_no in range(warmup + runs):
        for name, func in variants.items():
            start = time.perf_counter()
            for _ in range(inner):
                func()
            seconds = (time.perf_counter() - start) / inner
            if round_no >= warmup:
                timed[name].seconds.append(seconds)
    return timed


def calls_for(func: Callable[[], Any], budget: float = 0.25) -> int:
    """How many calls of ``func`` fill about ``budget`` seconds (at least 1)."""
    start = time.perf_counter()
    func()
    return max(1, int(budget / max(time.perf_counter() - start, 1e-6)))


def ratio(slower: Timed, faster: Timed) -> float:
    """``median(slower) / median(faster)``: how many times faster ``faster`` is."""
    return slower.median / faster.median


# -- child processes ----------------------------------------------------------------------
@dataclass
class ChildRun:
    seconds: float
    rss_mb: float  # peak resident set size of the child (ru_maxrss)
    returncode: int
    stderr: str


#: Runs argv[1:] and prints "seconds maxrss_kib exitcode". Run from this small process, the
#: child's ru_maxrss is its own: a child exec'd straight from a big parent (vfork) inherits
#: that parent's high-water RSS, which would hide the child's when it is smaller.
_WRAPPER = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_child(args: Sequence[str | Path], cwd: Path = ROOT) -> ChildRun:
    """Run a command to completion: its wall time and peak RSS (``os.wait4``, ru_maxrss)."""
    proc = subprocess.run(
        [str(PYTHON), "-I", "-S", "-c", _WRAPPER, *(str(a) for a in args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        seconds, rss_kib, code = proc.stdout.split()
    except ValueError:
        return ChildRun(float("nan"), float("nan"), proc.returncode or 1, proc.stderr)
    return ChildRun(float(seconds), int(rss_kib) / 1024, int(code), proc.stderr)


def alternate_children(
    commands: dict[str, Callable[[int], list[str | Path]]],
    runs: int,
    ok_codes: tuple[int, ...] = (0, 1),
) -> dict[str, Timed]:
    """Child processes in turn, A B A B; ``commands[name](round)`` gives the argv of a round.

    Child runs include interpreter start and imports, as a user's run does. A child that
    exits with a code outside ``ok_codes`` stops the benchmark with its stderr.
    """
    timed = {name: Timed(name) for name in commands}
    for round_no in range(runs):
        for name, make in commands.items():
            child = run_child(make(round_no))
            if child.returncode not in ok_codes:
                raise RuntimeError(f"{name} exited {child.returncode}:\n{child.stderr[-4000:]}")
            timed[name].seconds.append(child.seconds)
            timed[name].rss_mb.append(child.rss_mb)
    return timed


# -- agreement of attributions ------------------------------------------------------------
def per_sample_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each sample's flattened attributions (NaN if constant)."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            out[i] = stats.spearmanr(x, y).statistic
    return out


def pixel_maps(attributions: np.ndarray) -> np.ndarray:
    """``(N, C, H, W) -> (N, H*W)``: |attribution| averaged over channels, per pixel."""
    a = np.abs(np.asarray(attributions, dtype=np.float64))
    return a.mean(axis=1).reshape(len(a), -1)


def spread_text(values: np.ndarray) -> str:
    """``median (min)`` of per-sample values, ignoring NaN."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return "n/a"
    return f"{np.median(v):.4f} (min {v.min():.4f})"


# -- machine ------------------------------------------------------------------------------
def lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def machine() -> dict[str, Any]:
    """CPU model, cores, the vector/matrix extensions that matter for bf16, memory."""
    import torch

    info = lscpu()
    flags = set(info.get("Flags", "").split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": info.get("Model name", platform.processor() or "unknown"),
        "cores": len(os.sched_getaffinity(0)),
        "threads_per_core": info.get("Thread(s) per core", "?"),
        "flags": {f: f in flags for f in wanted},
        "memory_gib": round(mem, 1),
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def package_versions() -> dict[str, str]:
    """The benchmarked packages' versions (the header gives Python's separately)."""
    from auditor import provenance

    versions = provenance.package_versions(PACKAGES)
    del versions["python"]
    return versions


# -- markdown -----------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "n/a"}[ok]


@dataclass
class Section:
    """One case's part of RESULTS.md, its raw numbers, and its targets' verdicts."""

    title: str
    text: str
    raw: dict[str, Any] = field(default_factory=dict)
    targets: list[tuple[str, str, bool | None]] = field(default_factory=list)

    def markdown(self) -> str:
        return f"## {self.title}\n\n{self.text.strip()}\n"


#: Numbers one case measures and a later case of the same ``run_all.py`` process reads
#: (case workload's explainers-alone share of the sanity metric, for case e2e17's floor).
MEASURED: dict[str, float] = {}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
