"""Logs that show life: in a non-terminal run a heartbeat line comes at least every
``AUDITOR_HEARTBEAT_SECONDS`` (30 s by default), also while one slow batch runs."""

from __future__ import annotations

import io
import re
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from conftest import ROOT

from auditor import registries
from auditor.explainers.base import Explainer
from auditor.progress import (
    HEARTBEAT_SECONDS,
    Reporter,
    TaskState,
    fmt_duration,
    heartbeat_interval,
)
from auditor.runner import RunOptions, run

BEAT = re.compile(
    r"^\[ *\d+\.\ds\] explain slow_for_test: batch (\d)/3 running, \d+s elapsed, ETA (.*)$"
)
PATIENCE = 60.0  # seconds a batch waits for its heartbeat before giving up (never, unless broken)


class SlowExplainer(Explainer):
    """Gradient-free and slow (for heartbeat tests): each batch sleeps ``SLEEP`` seconds,
    then, when ``WATCH`` is set, waits until ``WATCH`` shows a heartbeat of this batch.

    Waiting for the line instead of sleeping a fixed time makes the test hold on a loaded
    machine: a heartbeat thread that is late is waited for, one that never comes fails.
    """

    name: ClassVar[str] = "slow_for_test"
    SLEEP: ClassVar[float] = 0.3
    WATCH: ClassVar[io.StringIO | None] = None
    batches: ClassVar[int] = 0

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        type(self).batches += 1
        time.sleep(self.SLEEP)
        deadline = time.monotonic() + PATIENCE
        while self.WATCH is not None and time.monotonic() < deadline:
            if f"batch {self.batches}/3 running" in self.WATCH.getvalue():
                break
            time.sleep(0.02)
        return inputs.clone()


class NonTTY(io.StringIO):
    """stderr of a scheduled job: not a terminal."""

    def isatty(self) -> bool:
        return False


@pytest.fixture
def slow_plugin() -> Any:
    registries.explainers.register(SlowExplainer)
    SlowExplainer.batches = 0
    yield SlowExplainer
    SlowExplainer.WATCH = None
    registries.explainers.unregister(SlowExplainer.name)


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "slow.yaml"
    spec.write_text(
        f"""\
version: 1
name: slow
seed: 0
model:
  source: python
  class: examples.models:DigitsCNN
  pythonpath: [{ROOT}]
  init: {{num_classes: 10}}
  weights: {ROOT / "models" / "digits_cnn.safetensors"}
data:
  source: sklearn
  name: digits
  split: test
  slice: {{start: 0, stop: 48}}
  batch_size: 16
explainers:
  - type: slow_for_test
report:
  formats: []
"""
    )
    return spec


def test_a_non_tty_run_of_a_slow_explainer_writes_heartbeats(
    slow_plugin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITOR_HEARTBEAT_SECONDS", "0.1")
    stderr = NonTTY()
    monkeypatch.setattr(sys, "stderr", stderr)
    slow_plugin.WATCH = stderr
    outcome = run(_spec(tmp_path), RunOptions(out=tmp_path / "out", run_id="r"))  # auto: log
    assert outcome.exit_code == 0
    lines = stderr.getvalue().splitlines()
    beats = [(m.group(1), m.group(2)) for m in map(BEAT.match, lines) if m]
    assert {batch for batch, _ in beats} == {"1", "2", "3"}, lines  # each batch waited for one
    # no estimate before the first batch is done; then one from the batches so far
    assert ("1", "unknown until batch 1 finishes") in beats, lines
    assert any(batch != "1" and re.fullmatch(r"\d+s", eta) for batch, eta in beats), lines
    # heartbeats sit between the task's own lines
    start = lines.index(next(line for line in lines if line.endswith("explain ...")))
    done = next(i for i, line in enumerate(lines) if "explain slow_for_test: done in" in line)
    assert all(start < i < done for i, line in enumerate(lines) if BEAT.match(line))


def test_quiet_runs_write_no_heartbeat(
    slow_plugin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AUDITOR_HEARTBEAT_SECONDS", "0.1")
    run(_spec(tmp_path), RunOptions(out=tmp_path / "out", run_id="q", progress="quiet"))
    assert capsys.readouterr().err == ""


# -- the lines themselves, on a clock the test moves -------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(stream: io.StringIO) -> list[str]:
    return [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]


def test_heartbeat_lines_inside_long_batches() -> None:
    clock, stream = Clock(), io.StringIO()
    reporter = Reporter("log", stream, heartbeat=30, clock=clock)
    with reporter.task("explain kernel_shap", 2) as task:
        clock.now += 29
        assert not reporter.pulse()  # not silent long enough
        clock.now += 1
        assert reporter.pulse()
        clock.now += 40
        assert reporter.pulse()  # batch 1 is still running: another line
        task.advance()  # batch 1 took 70 s
        clock.now += 30
        assert reporter.pulse()
        clock.now += 50
        assert reporter.pulse()  # batch 2 runs past its estimate
        task.advance()
    assert _lines(stream) == [
        "explain kernel_shap: batch 1/2 running, 30s elapsed, ETA unknown until batch 1 finishes",
        "explain kernel_shap: batch 1/2 running, 1m 10s elapsed, ETA unknown until batch 1 "
        "finishes",
        "explain kernel_shap: batch 2/2 running, 1m 40s elapsed, ETA 40s",
        "explain kernel_shap: batch 2/2 running, 2m 30s elapsed, ETA 0s",
        "explain kernel_shap: done in 150.0s",
    ]


def test_eta_of_a_resumed_task_counts_only_this_run_s_batches() -> None:
    clock, stream = Clock(), io.StringIO()
    reporter = Reporter("log", stream, heartbeat=30, clock=clock)
    with reporter.task("explain ig", 10, done=6) as task:  # 6 finished before the resume
        clock.now += 30
        reporter.pulse()
        clock.now += 10
        task.advance()  # batch 7 took 40 s
        clock.now += 30
        reporter.pulse()
    assert _lines(stream) == [
        "explain ig: 10 batches",
        "explain ig: batch 7/10 running, 30s elapsed, ETA unknown until batch 7 finishes",
        "explain ig: batch 8/10 running, 1m 10s elapsed, ETA 1m 30s",
        "explain ig: done in 70.0s",
    ]


def test_fast_batches_of_a_fresh_task_are_not_taken_for_resumed_ones() -> None:
    """Batches that finish at once (a fast explainer) still count toward the ETA: only the
    caller's ``done`` says what was finished before."""
    clock, stream = Clock(), io.StringIO()
    reporter = Reporter("log", stream, heartbeat=30, clock=clock)
    with reporter.task("explain saliency", 100) as task:
        for _ in range(50):
            clock.now += 0.001
            task.advance()
        clock.now += 30
        reporter.pulse()
    assert _lines(stream)[-2] == "explain saliency: batch 51/100 running, 30s elapsed, ETA 0s"
    state = TaskState("explain ig", 10, started=100.0, skipped=6, done=8, last_advance=120.0)
    # 2 batches in 20 s: 10 s a batch, 2 to go, 5 s into the next
    assert state.line(125.0) == "explain ig: batch 9/10 running, 25s elapsed, ETA 15s"


def test_heartbeat_names_the_stage_outside_a_task() -> None:
    clock, stream = Clock(), io.StringIO()
    reporter = Reporter("log", stream, heartbeat=30, clock=clock)
    reporter.log("render ...")
    clock.now += 95
    assert reporter.pulse()
    assert _lines(stream) == ["render ...", "still working: render ... (1m 35s since it began)"]


def test_no_heartbeat_while_lines_keep_coming() -> None:
    clock, stream = Clock(), io.StringIO()
    reporter = Reporter("log", stream, heartbeat=30, clock=clock)
    for i in range(6):
        reporter.log(f"step {i}")
        clock.now += 20
        assert not reporter.pulse()
    assert "still working" not in stream.getvalue()


def test_the_thread_writes_heartbeats_and_stops() -> None:
    stream = io.StringIO()
    with Reporter("log", stream, heartbeat=0.05) as reporter:
        reporter.log("measure ...")
        deadline = time.monotonic() + PATIENCE
        while "still working" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
    assert "still working: measure ... (" in stream.getvalue()
    assert reporter._beat is None  # joined on exit


def test_interval_from_argument_environment_or_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUDITOR_HEARTBEAT_SECONDS", raising=False)
    assert heartbeat_interval() == HEARTBEAT_SECONDS == 30
    monkeypatch.setenv("AUDITOR_HEARTBEAT_SECONDS", "5")
    assert heartbeat_interval() == 5
    assert heartbeat_interval(0.5) == 0.5
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv("AUDITOR_HEARTBEAT_SECONDS", bad)
        assert heartbeat_interval() == 30


def test_durations_read_like_a_clock() -> None:
    assert [fmt_duration(s) for s in (0.4, 42, 185, 3720)] == ["0s", "42s", "3m 05s", "1h 02m"]
