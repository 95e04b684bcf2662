"""bench/run_all.py keeps the sections of RESULTS.md it does not produce (hand measurements)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from common import Section  # noqa: E402
from run_all import CASE_ORDER, KEPT_NOTE, kept_sections  # noqa: E402

PREVIOUS = """# Benchmark results

## Targets

| target | measured | verdict |

## Case 1: end to end

old numbers

## Case ray: resnet18 (measured by hand, not yet by `make bench`)

hand numbers of ray

## Report render speed (measured by hand)

render table
"""


def titles(kept: list[str]) -> list[str]:
    return [part.splitlines()[0] for part in kept]


def test_hand_sections_are_kept_and_rerun_cases_replaced() -> None:
    produced = [Section("Case 1: end to end", "new"), Section("Case ray: resnet18", "new")]
    kept = kept_sections(PREVIOUS, produced)
    assert titles(kept) == ["## Report render speed (measured by hand)"]
    assert "render table" in kept[0] and KEPT_NOTE in kept[0]
    # a case not rerun keeps its hand-measured section, once marked
    again = kept_sections(PREVIOUS, [Section("Case 1: end to end", "new")])
    assert titles(again) == [
        "## Case ray: resnet18 (measured by hand, not yet by `make bench`)",
        "## Report render speed (measured by hand)",
    ]
    assert kept_sections("\n".join(again), []) == again


def test_the_committed_results_keep_their_hand_sections() -> None:
    """What `make bench` (every case, with the titles the cases wrote last time, in
    bench/results.json) would keep of the committed RESULTS.md: only the sections no case
    writes, the hand-measured analyses."""
    text = (BENCH / "RESULTS.md").read_text()
    cases = json.loads((BENCH / "results.json").read_text())["cases"]
    assert sorted(cases) == sorted(CASE_ORDER)  # the committed results are a full run's
    every_case = [Section(case["title"], "") for case in cases.values()]
    kept = titles(kept_sections(text, every_case))
    assert any(t.startswith("## Report render speed") for t in kept)
    assert any(t.startswith("## Adaptive integrated gradients: analysis") for t in kept)
    generated = {f"## {case['title']}" for case in cases.values()}
    assert not generated & set(kept)
    assert not any(t.startswith(("## Targets", "## The same targets")) for t in kept)
