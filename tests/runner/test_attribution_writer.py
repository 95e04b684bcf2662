"""AttributionWriter: constant-size progress records, and a resume that trusts only what
both the record and the stats file say is done."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from auditor.run_folder import AttributionWriter

SHAPE = (6, 2)


def batch(i: int) -> tuple[np.ndarray, dict[str, list[float]]]:
    values = np.full((2, 2), float(i), dtype=np.float32)
    return values, {"delta": [i + 0.5, math.nan if i == 1 else -i]}


def write_batches(writer: AttributionWriter, batches: range) -> None:
    for i in batches:
        values, stats = batch(i)
        writer.write(i, 2 * i, values, stats)


def uninterrupted(path: Path) -> tuple[np.ndarray, dict[str, list[float]]]:
    writer = AttributionWriter(path, SHAPE, resume=False)
    write_batches(writer, range(3))
    stats = writer.stats
    return np.load(writer.finish()), stats


def test_the_progress_record_does_not_grow_with_the_slice(tmp_path: Path) -> None:
    writer = AttributionWriter(tmp_path / "a.npy", SHAPE, resume=False)
    sizes = []
    for i in range(3):
        values, stats = batch(i)
        writer.write(i, 2 * i, values, stats)
        sizes.append(writer.progress_path.stat().st_size)
    assert sizes[0] == sizes[2]  # the stats are in the .jsonl, one line per batch
    assert json.loads(writer.progress_path.read_text()) == {"shape": [6, 2], "batches": 3}
    assert len(writer.stats_path.read_text().splitlines()) == 3
    writer.finish()
    assert not writer.progress_path.exists() and not writer.stats_path.exists()


def test_a_stats_line_past_the_record_is_dropped_on_resume(tmp_path: Path) -> None:
    """Killed after batch 2's stats line but before its record: batch 2 is redone once."""
    expected_array, expected_stats = uninterrupted(tmp_path / "clean.npy")
    path = tmp_path / "killed.npy"
    writer = AttributionWriter(path, SHAPE, resume=False)
    write_batches(writer, range(2))
    with open(writer.stats_path, "a") as fh:  # the line of batch 2, then the kill
        fh.write(json.dumps({"batch": 2, "stats": batch(2)[1]}) + "\n")
    writer.abandon()
    resumed = AttributionWriter(path, SHAPE, resume=True)
    assert resumed.done_batches == 2
    write_batches(resumed, range(2, 3))
    np.testing.assert_array_equal(np.load(resumed.finish()), expected_array)
    np.testing.assert_array_equal(resumed.stats["delta"], expected_stats["delta"])  # NaN too


def test_a_missing_stats_line_redoes_its_batch(tmp_path: Path) -> None:
    """The record says 2 batches but only one line reached the disk: resume from batch 1."""
    path = tmp_path / "crashed.npy"
    writer = AttributionWriter(path, SHAPE, resume=False)
    write_batches(writer, range(2))
    first = writer.stats_path.read_text().splitlines(keepends=True)[0]
    writer.stats_path.write_text(first + '{"batch": 1, "sta')  # torn last line
    writer.abandon()
    resumed = AttributionWriter(path, SHAPE, resume=True)
    assert resumed.done_batches == 1
    assert resumed.stats == {"delta": [0.5, 0.0]}


def test_batches_written_out_of_order_resume_and_finish_in_sample_order(tmp_path: Path) -> None:
    """Ray shards finish in any order: batch 2 then 0, a kill, then batch 1 on resume."""
    expected_array, expected_stats = uninterrupted(tmp_path / "clean.npy")
    path = tmp_path / "shards.npy"
    writer = AttributionWriter(path, SHAPE, resume=False)
    for i in (2, 0):
        values, stats = batch(i)
        writer.write(i, 2 * i, values, stats)
    writer.abandon()
    resumed = AttributionWriter(path, SHAPE, resume=True)
    assert resumed.done == {0, 2}
    values, stats = batch(1)
    resumed.write(1, 2, values, stats)
    np.testing.assert_array_equal(resumed.stats["delta"], expected_stats["delta"])
    np.testing.assert_array_equal(np.load(resumed.finish()), expected_array)
