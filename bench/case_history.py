"""Case history: the run index (issue 15) must not get slower as an audit's history grows.

A generated ``index.jsonl`` of 10, 1,000 and 100,000 entries (each a realistic line: three
sha256, three checks, two metric values, about 560 bytes). Run folders (spec.yaml and
results.json) exist for the newest runs; the newest three of those were deleted and one
crashed (exit 3), so ``previous`` has to skip four lines before it finds its run.

(a) ``previous`` (read from the end in 64 KiB blocks): median per call at 1,000 and 100,000
lines; target < 50 ms at 1,000, and no growth with the length.
(b) ``append`` (flock, one ``os.write`` on an O_APPEND descriptor, fsync): median per call at
10, 1,000 and 100,000 lines, the sizes alternating; target: the same time at 10 and 100,000
lines (ratio <= 1.5, fsync included).
(c) For scale, what reads every line: ``read`` and ``history_table`` (``auditor history``)
at 1,000 lines with a run folder for every run.
(d) The report's Trend section (``report.trend: 20``) of a real run (the breast-cancer audit
on 32 samples, made once with the CLI) whose audit folder holds 1,000 earlier runs, each
with a run folder: build (read the index's end) and draw (the figure); target < 2 s.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import AUDITOR, ROOT, Section, Timed, alternate, log, table

from auditor import history
from auditor.history import IndexEntry
from auditor.report.canvas import Canvas
from auditor.report.sections import trend
from auditor.report.source import ReportSource
from auditor.run_folder import RunFolder

TARGET_PREVIOUS_S = 0.050
TARGET_APPEND_RATIO = 1.5
TARGET_TREND_S = 2.0
#: Newest runs with a run folder; of them the last DELETED lost theirs and one crashed.
WITH_FOLDERS = 10
DELETED = 3


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry(i: int, exit_code: int = 0) -> IndexEntry:
    """The index line of generated run ``i`` (weights change every 50 runs, data every 7)."""
    run_id = f"20260101T{i:06d}Z"
    return IndexEntry(
        run_id=run_id,
        path=run_id,
        finished=f"2026-01-01T00:00:00.{i % 1_000_000:06d}+00:00",
        status={0: "passed", 1: "failed"}.get(exit_code, "error"),
        exit_code=exit_code,
        spec_sha256=_sha("spec"),
        weights_sha256=_sha(f"weights {i // 50}"),
        data_sha256=_sha(f"data {i // 7}"),
        checks={
            "model.accuracy": "pass",
            "integrated_gradients top 5": "pass",
            "integrated_gradients.completeness_error": "pass",
        },
        metrics={
            "model.accuracy": 0.95 + (i % 5) / 100,
            "integrated_gradients.completeness_error": 0.001 * (1 + i % 9),
        },
    )


def make_audit(root: Path, n: int, *, all_folders: bool = False) -> Path:
    """An audit folder whose index has ``n`` lines (written at once, not through append)."""
    audit = root / f"audit-{n}"
    audit.mkdir(parents=True)
    crashed = n - DELETED - 1
    lines = [entry(i, 3 if i == crashed else 0).line() for i in range(n)]
    (audit / history.INDEX).write_bytes(b"".join(lines))
    first = 0 if all_folders else max(0, n - WITH_FOLDERS)
    for i in range(first, n - DELETED):
        folder = audit / entry(i).path
        folder.mkdir()
        (folder / "spec.yaml").write_text("version: 1\n")
        (folder / "results.json").write_text("{}\n")
    return audit


def trend_audit(root: Path, n: int) -> RunFolder:
    """A real run (made with the CLI) as the newest of ``n + 1`` runs of its audit: the
    ``n`` before it are generated index lines, each with a run folder."""
    made = root / "made"
    sets = (
        "data.slice.stop=32",
        "report.formats=[]",
        "explainers=[{type: integrated_gradients, params: {n_steps: 8}}]",
        "metrics=[]",
    )
    command = [str(AUDITOR), "run", str(ROOT / "audits" / "breast_cancer_mlp.yaml"), "-q"]
    command += ["--out", str(made), "--run-id", "current"]
    command += [arg for value in sets for arg in ("--set", value)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
    )
    assert done.returncode in (0, 1), done.stderr
    audit = made / "breast-cancer-mlp"
    (audit / history.INDEX).unlink()
    current = RunFolder(audit / "current")
    finished = datetime.fromisoformat(current.read_json("results.json")["provenance"]["finished"])
    start = finished - timedelta(minutes=n + 1)
    lines = []
    for i in range(n):
        when = (start + timedelta(minutes=i)).isoformat()
        line = entry(i, 1 if i % 7 == 0 else 0).model_copy(update={"finished": when})
        lines.append(line.line())
        (audit / line.path).mkdir()
        (audit / line.path / "results.json").write_text("{}\n")
    (audit / history.INDEX).write_bytes(b"".join(lines))
    return current


def draw_trend(folder: RunFolder) -> int:
    """The Trend section of ``folder``'s report, built and drawn; the runs it shows."""
    src = ReportSource.open(folder)
    view = trend.build(src)
    assert view is not None
    with Canvas(folder) as canvas:
        trend.draw(view, src, canvas)
    return len(view.runs)


def filesystem(path: Path) -> str:
    """The file system type of ``path`` (``stat -f``), e.g. ext2/ext3."""
    try:
        done = subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def per_call(func: Callable[[], Any], calls: int) -> list[float]:
    """Seconds of each of ``calls`` calls."""
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        func()
        out.append(time.perf_counter() - start)
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g}"


def run(runs: int, sizes: tuple[int, ...] = (10, 1_000, 100_000), calls: int = 200) -> Section:
    root = Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        return _run(root, runs, sizes, calls)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(root: Path, runs: int, sizes: tuple[int, ...], calls: int) -> Section:
    log(f"case history: generating indexes of {', '.join(f'{n:,}' for n in sizes)} lines")
    audits = {n: make_audit(root, n) for n in sizes}
    expected = {n: entry(n - DELETED - 2).run_id for n in sizes if n > WITH_FOLDERS}
    for n, run_id in expected.items():
        found = history.previous(audits[n])
        assert found is not None and found.run_id == run_id, (n, found)

    # (a) previous: the first call on a fresh index, then `calls` calls per round, alternating
    big = [n for n in sizes if n > WITH_FOLDERS]
    first = {n: per_call(lambda n=n: history.previous(audits[n]), 1)[0] for n in big}
    prev = alternate(
        {f"{n:,}": (lambda n=n: history.previous(audits[n])) for n in big},
        runs,
        inner=calls,
    )
    prev_rows = [
        [f"{n:,}", ms(first[n]), ms(prev[f"{n:,}"].median), ms(max(prev[f"{n:,}"].seconds))]
        for n in big
    ]
    at_1000 = prev["1,000"].median if "1,000" in prev else float("nan")
    largest = prev[f"{big[-1]:,}"].median

    # (b) append: sizes alternate; every timed call adds a line (a few hundred on 100,000)
    one = entry(0)
    appends: dict[str, Timed] = {f"{n:,}": Timed(f"{n:,}") for n in sizes}
    for round_no in range(runs + 1):
        for n in sizes:
            seconds = per_call(lambda n=n: history.append(audits[n], one), max(10, calls // 10))
            if round_no:  # the first round warms up
                appends[f"{n:,}"].seconds.append(statistics.median(seconds))
    app_rows = [
        [
            f"{n:,}",
            ms(appends[f"{n:,}"].median),
            f"{ms(appends[f'{n:,}'].minimum)} .. {ms(max(appends[f'{n:,}'].seconds))}",
        ]
        for n in sizes
    ]
    append_ratio = appends[f"{sizes[-1]:,}"].median / appends[f"{sizes[0]:,}"].median

    # (c) reading every line, for scale: 1,000 runs, each with its folder
    full = make_audit(root / "full", 1_000, all_folders=True)
    reads = alternate(
        {
            "read": lambda: history.read(full, warn=None),
            "history_table": lambda: history.history_table(full, as_json=False),
        },
        runs,
    )
    reads_table = table(
        ["call", "median ms", "min .. max ms"],
        [
            [name, ms(t.median), f"{ms(t.minimum)} .. {ms(max(t.seconds))}"]
            for name, t in reads.items()
        ],
    )
    line_bytes = (audits[sizes[-1]] / history.INDEX).stat().st_size / sizes[-1]

    # (d) the report's Trend section with 1,000 earlier runs
    log("case history: a real run with 1,000 earlier runs, for the trend section")
    current = trend_audit(root / "trend", 1_000)
    shown = draw_trend(current)
    trend_times = alternate({"trend": lambda: draw_trend(current)}, runs)["trend"]

    text = (
        f"""Generated indexes (`bench/case_history.py`): lines of about {line_bytes:.0f} bytes
(three sha256, three checks, two metric values). Run folders exist for the newest
{WITH_FOLDERS} runs; the newest {DELETED} of those were deleted and the one before them
crashed (exit 3), so `previous` skips {DELETED + 1} lines before it returns. Each size's
answer was checked to be the right run. {runs} alternating rounds after a warm-up round.

### (a) `previous`: the last finished run, read from the end of the index

| index lines | first call ms | median ms ({calls} calls per round) | slowest round ms |
|---|---|---|---|
"""
        + "\n".join("| " + " | ".join(r) + " |" for r in prev_rows)
        + f"""

**{ms(at_1000)} ms at 1,000 lines** (target < {ms(TARGET_PREVIOUS_S)} ms);
{ms(largest)} ms at {big[-1]:,} lines: the cost does not grow with the history (64 KiB
blocks from the end; the first block holds the answer).

### (b) `append`: one line under the lock, fsync included

| index lines | median ms per append | min .. max of the round medians ms |
|---|---|---|
"""
        + "\n".join("| " + " | ".join(r) + " |" for r in app_rows)
        + f"""

Ratio {sizes[-1]:,} lines / {sizes[0]:,} lines: **{append_ratio:.2f}x** (target <=
{TARGET_APPEND_RATIO}x): an append neither reads nor rewrites the index (it reads only its
last byte, to close a torn line). Its time is the lock, one write and the fsync, on an
{filesystem(root)} file system (`stat -f` of the benchmark's temporary folder).

### (c) Reading every line, for scale (1,000 runs, each with its run folder)

{reads_table}

`read` parses every line and checks that each run's folder and results.json are still
there; `history_table` (what `auditor history` prints) also lists the folder for runs made
before the index existed. Both grow with the history, as a listing of it must; `previous`
(what `baseline: previous` uses) does not.

### (d) The report's Trend section with 1,000 earlier runs

A real run of the breast-cancer audit (32 samples) whose audit folder holds 1,000 earlier
runs, each with its folder; the section shows the last {shown} (`report.trend: 20`):
build (the index read from its end, this run's results.json) and draw (one figure of the
verdict and each checked metric). Median **{trend_times.median:.2f} s** ({trend_times.minimum:.2f}
.. {max(trend_times.seconds):.2f} s over {runs} rounds; target < {TARGET_TREND_S:g} s); most of it
is matplotlib drawing the figure, which does not depend on the history's length.
"""
    )
    targets = [
        (
            "history: previous() with 1,000 runs in the index < 50 ms",
            f"{ms(at_1000)} ms ({ms(largest)} ms at {big[-1]:,})",
            at_1000 < TARGET_PREVIOUS_S,
        ),
        (
            f"history: append O(1): {sizes[-1]:,} lines / {sizes[0]:,} lines <= "
            f"{TARGET_APPEND_RATIO}x",
            f"{append_ratio:.2f}x",
            append_ratio <= TARGET_APPEND_RATIO,
        ),
        (
            "history: the report's trend section with 1,000 runs < 2 s",
            f"{trend_times.median:.2f} s",
            trend_times.median < TARGET_TREND_S,
        ),
    ]
    raw = {
        "previous_first_s": {str(n): first[n] for n in big},
        "previous_s": {k: t.seconds for k, t in prev.items()},
        "append_s": {k: t.seconds for k, t in appends.items()},
        "read_s": {k: t.seconds for k, t in reads.items()},
        "line_bytes": line_bytes,
        "trend_s": trend_times.seconds,
    }
    return Section(
        "Case history: the run index at 1,000 and 100,000 runs (issue 15)", text, raw, targets
    )
