"""Logs that show life: in a non-terminal run a heartbeat line comes at least every
``AUDITOR_HEARTBEAT_SECONDS`` (30 s by default), also while one slow batch runs."""

from __future__ import annotations

import io
import re
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
    r"^\[ *\d+\.\ds\] explain slow_for_test: batch (\d)/3 running, \d+s elapsed, ETA "
)


class SlowExplainer(Explainer):
    """Gradient-free and slow: sleeps ``SLEEP`` seconds per batch (for heartbeat tests)."""

    name: ClassVar[str] = "slow_for_test"
    SLEEP: ClassVar[float] = 0.5

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        time.sleep(self.SLEEP)
        return inputs.clone()


@pytest.fixture
def slow_plugin() -> Any:
    registries.explainers.register(SlowExplainer)
    yield SlowExplainer
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
    slow_plugin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AUDITOR_HEARTBEAT_SECONDS", "0.15")
    outcome = run(_spec(tmp_path), RunOptions(out=tmp_path / "out", run_id="r"))  # auto: log
    assert outcome.exit_code == 0
    lines = capsys.readouterr().err.splitlines()
    beats = [line for line in lines if BEAT.match(line)]
    assert {BEAT.match(line).group(1) for line in beats} == {"1", "2", "3"}, lines  # type: ignore[union-attr]
    # no estimate before the first batch is done; then one from the batches so far
    assert any(line.endswith("ETA unknown until batch 1 finishes") for line in beats)
    assert any(re.search(r"batch 3/3 running, \d+s elapsed, ETA \d+s$", line) for line in beats)
    # heartbeats sit between the task's own lines
    start = lines.index(next(line for line in lines if line.endswith("explain ...")))
    done = next(i for i, line in enumerate(lines) if "explain slow_for_test: done in" in line)
    assert all(start < lines.index(line) < done for line in beats)


def test_quiet_runs_write_no_heartbeat(
    slow_plugin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AUDITOR_HEARTBEAT_SECONDS", "0.15")
    SlowExplainer.SLEEP = 0.3
    try:
        run(_spec(tmp_path), RunOptions(out=tmp_path / "out", run_id="q", progress="quiet"))
    finally:
        SlowExplainer.SLEEP = 0.5
    assert capsys.readouterr().err == ""


def test_heartbeat_fires_during_one_long_batch() -> None:
    stream = io.StringIO()
    reporter = Reporter("log", stream, heartbeat=0.1)
    with reporter, reporter.task("explain kernel_shap", 2) as task:
        time.sleep(0.35)  # batch 1 of 2 takes long
        task.advance()
        time.sleep(0.35)
        task.advance()
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    first = [line for line in lines if "batch 1/2" in line]
    second = [line for line in lines if "batch 2/2" in line]
    assert len(first) >= 2 and len(second) >= 2, lines
    assert (
        first[0]
        == "explain kernel_shap: batch 1/2 running, 0s elapsed, ETA unknown until batch 1 finishes"
    )
    assert re.fullmatch(
        r"explain kernel_shap: batch 2/2 running, [01]s elapsed, ETA 0s", second[-1]
    )
    assert lines[-1].startswith("explain kernel_shap: done in ")


def test_eta_of_a_resumed_task_counts_only_this_run_s_batches() -> None:
    state = TaskState("explain ig", 10)
    state.advance(6)  # a resumed run: 6 batches were finished before, in no time
    time.sleep(0.05)
    state.advance(1)
    assert (state.done, state.skipped) == (7, 6)
    state = TaskState("explain ig", 10, done=8, skipped=6, started=100.0, last_advance=120.0)
    # 2 batches in 20 s: 10 s a batch, 2 to go, 5 s into the next
    assert state.line(125.0) == "explain ig: batch 9/10 running, 25s elapsed, ETA 15s"
    state = TaskState("explain ig", 10, done=6, skipped=6, started=100.0, last_advance=100.0)
    assert state.line(103.0) == (
        "explain ig: batch 7/10 running, 3s elapsed, ETA unknown until batch 7 finishes"
    )


def test_heartbeat_names_the_stage_outside_a_task() -> None:
    stream = io.StringIO()
    with Reporter("log", stream, heartbeat=0.1) as reporter:
        reporter.log("render ...")
        time.sleep(0.25)
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines[0] == "render ..."
    assert lines[1] == "still working: render ... (0s since it began)"


def test_no_heartbeat_while_lines_keep_coming() -> None:
    stream = io.StringIO()
    with Reporter("log", stream, heartbeat=0.3) as reporter:
        for i in range(6):
            reporter.log(f"step {i}")
            time.sleep(0.1)
    assert "still working" not in stream.getvalue()


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
