"""Case 4: scaling of the digits audit with the slice size: time and peak RSS.

digits has 1,797 samples, so the slices come from a ``tensors`` .npz written here: every
digit of the "all" split, repeated in order until there are enough (sample ``i`` is digit
``i mod 1797``). The spec is case 1's (bench/specs/digits_1000.yaml: seven explainers,
deletion, randomization_sanity, HTML and PDF) with its data block replaced. Each size is
its own ``auditor run`` child process; sizes alternate (200, 800, 3200, 200, ...).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from common import AUDITOR, BENCH, Section, alternate_children, log, table

from auditor.data.sklearn_source import load_arrays

SPEC = BENCH / "specs" / "digits_1000.yaml"


def write_tensors(path: Path, n: int) -> None:
    x, y, _ = load_arrays("digits", "all")
    reps = -(-n // len(x))
    np.savez(path, x=np.tile(x, (reps, 1, 1, 1))[:n], y=np.tile(y, reps)[:n])


def command(out: Path, data: Path, n: int, formats: str, metrics: bool):
    block = f"{{source: tensors, path: {data}, slice: {{start: 0, stop: {n}}}, batch_size: 64}}"

    def argv(r: int) -> list[str | Path]:
        return [
            AUDITOR, "run", SPEC, "-q", "--out", out, "--run-id", f"n{n}-r{r}",
            "--set", f"data={block}", "--set", f"report.formats=[{formats}]",
        ] + ([] if metrics else ["--set", "metrics=[]"])  # fmt: skip

    return argv


def run(
    runs: int,
    sizes: tuple[int, ...] = (200, 800, 3200),
    formats: str = "html, pdf",
    metrics: bool = True,
) -> Section:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits_tiled.npz"
        write_tensors(data, max(sizes))
        cmds = {f"{n}": command(Path(tmp) / "runs", data, n, formats, metrics) for n in sizes}
        shown = " ".join(str(a) for a in cmds[str(sizes[0])](0)).replace(tmp, "TMP")
        timed = alternate_children(cmds, runs)
    small, large = timed[str(sizes[0])], timed[str(sizes[-1])]
    growth = large.median / small.median
    rss_growth = large.median_rss - small.median_rss
    rows = [
        [n, f"{t.median:.2f}", t.spread, f"{t.median / int(n) * 1000:.2f}", f"{t.median_rss:.0f}",
         f"{min(t.rss_mb):.0f}..{max(t.rss_mb):.0f}"]
        for n, t in timed.items()
    ]  # fmt: skip
    log(f"case 4: time x{growth:.2f}, RSS +{rss_growth:.0f} MB")
    text = f"""Command (first size, round 0; TMP is a temporary folder):

    {shown}

{runs} rounds, sizes in turn; wall time of the child process (imports included) and its
peak RSS (`os.wait4`, ru_maxrss).

{table(["samples", "median s", "min..max s", "s per 1000 samples", "median peak RSS MB",
        "RSS min..max MB"], rows)}

From {sizes[0]} to {sizes[-1]} samples ({sizes[-1] // sizes[0]}x): time grows
{growth:.2f}x (fastest runs: {large.minimum / small.minimum:.2f}x), peak RSS grows
{rss_growth:+.0f} MB.
"""  # fmt: skip
    # The bound: 17x for 16x the samples; other sizes (--smoke) scale it alike.
    limit = 17 / 16 * sizes[-1] / sizes[0]
    targets = [
        (
            f"scaling {sizes[0]} -> {sizes[-1]}: time grows <= {limit:.3g}x",
            f"{growth:.2f}x",
            growth <= limit,
        ),
        (
            f"scaling {sizes[0]} -> {sizes[-1]}: peak RSS grows < 150 MB",
            f"{rss_growth:+.0f} MB",
            rss_growth < 150,
        ),
    ]
    raw = {n: {"seconds": t.seconds, "rss_mb": t.rss_mb} for n, t in timed.items()}
    return Section("Case 4: scaling with the slice size", text, raw, targets)
