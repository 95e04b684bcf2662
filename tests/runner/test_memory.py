"""Peak memory does not grow with the slice: attributions stream to memory-mapped files."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from peak_rss import peak_rss_mb  # noqa: E402


def test_peak_rss_flat_from_200_to_1600_samples(tmp_path: Path) -> None:
    small, _, code_small = peak_rss_mb(200, tmp_path)
    large, _, code_large = peak_rss_mb(1600, tmp_path)
    assert code_small == 0 and code_large == 0
    assert large - small < 100, f"peak RSS {small:.0f} MB at 200 samples, {large:.0f} MB at 1600"
