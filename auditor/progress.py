"""Progress: a rich bar on a terminal, plain log lines otherwise, nothing with --quiet.

In log mode (a scheduled job, CI) a heartbeat thread writes a line whenever the run has
been silent for ``heartbeat`` seconds (default 30, or ``AUDITOR_HEARTBEAT_SECONDS``): the
task's batch and an ETA, or the stage still running. It fires while one slow batch runs,
so a log never goes quiet long enough to look hung.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

HEARTBEAT_ENV = "AUDITOR_HEARTBEAT_SECONDS"
HEARTBEAT_SECONDS = 30.0
RESUMED_WITHIN = 0.01  # seconds: steps advanced this soon after a task starts were done before


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


def heartbeat_interval(value: float | None = None) -> float:
    """Seconds of silence before a heartbeat line: ``value``, the environment, or 30."""
    if value is not None:
        return value
    raw = os.environ.get(HEARTBEAT_ENV, "")
    try:
        seconds = float(raw)
    except ValueError:
        return HEARTBEAT_SECONDS
    return seconds if seconds > 0 else HEARTBEAT_SECONDS


def fmt_duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``1h 02m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


@dataclass
class TaskState:
    """Where a task stands, for heartbeat lines."""

    description: str
    total: int
    done: int = 0
    #: Steps counted as done at the start (a resumed run's finished batches): no time of
    #: this run went into them, so the ETA leaves them out.
    skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    last_advance: float = field(default_factory=time.monotonic)

    def advance(self, n: int) -> None:
        now = time.monotonic()
        if self.done == self.skipped and now - self.started < RESUMED_WITHIN:
            self.skipped += n
            self.started = now
        self.done += n
        self.last_advance = now

    def line(self, now: float) -> str:
        """``explain kernel_shap: batch 3/10 running, 1m 10s elapsed, ETA 2m 40s``."""
        current = min(self.done + 1, self.total)
        elapsed = now - self.started
        if self.done > self.skipped:
            per_batch = (self.last_advance - self.started) / (self.done - self.skipped)
            left = per_batch * (self.total - self.done) - (now - self.last_advance)
            eta = f"ETA {fmt_duration(max(left, 0.0))}"
        else:
            eta = f"ETA unknown until batch {current} finishes"
        return (
            f"{self.description}: batch {current}/{self.total} running, "
            f"{fmt_duration(elapsed)} elapsed, {eta}"
        )


class Reporter:
    """Tells the user what the run is doing. Never affects results or exit codes."""

    def __init__(
        self, mode: str = "auto", stream: TextIO | None = None, heartbeat: float | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "log"
        self.mode = mode
        self.heartbeat = heartbeat_interval(heartbeat)
        self._progress: Progress | None = None
        self._t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._last_line = time.monotonic()
        self._last_message = ""
        self._last_message_at = time.monotonic()
        self._tasks: list[TaskState] = []
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> Reporter:
        if self.mode == "bar":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.__enter__()
        elif self.mode == "log":
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True)
            self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._beat is not None:
            self._stop.set()
            self._beat.join()
            self._beat = None
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
            self._progress = None

    def log(self, message: str) -> None:
        if self.mode == "quiet":
            return
        with self._lock:
            self._last_message, self._last_message_at = message, time.monotonic()
            self._write(message)

    def _write(self, message: str) -> None:
        """One line out (the caller holds the lock)."""
        self._last_line = time.monotonic()
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            elapsed = time.perf_counter() - self._t0
            print(f"[{elapsed:7.1f}s] {message}", file=self.stream, flush=True)

    def _heartbeats(self) -> None:
        """Background thread: a line whenever nothing was written for ``heartbeat`` s."""
        while True:
            with self._lock:
                due = self._last_line + self.heartbeat
            if self._stop.wait(max(due - time.monotonic(), 0.01)):
                return
            with self._lock:
                now = time.monotonic()
                if now - self._last_line < self.heartbeat:
                    continue
                if self._tasks:
                    self._write(self._tasks[-1].line(now))
                elif self._last_message:
                    since = fmt_duration(now - self._last_message_at)
                    self._write(f"still working: {self._last_message} ({since} since it began)")
                else:
                    self._write("still working")

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Task]:
        """A unit of work with ``total`` steps (batches)."""
        if self._progress is not None:
            progress = self._progress
            task_id = progress.add_task(description, total=total)

            class _Bar:
                def advance(self, n: int = 1) -> None:
                    progress.advance(task_id, n)

            yield _Bar()
            progress.update(task_id, completed=total)
            return
        reporter = self
        state = TaskState(description, total)
        with self._lock:
            self._tasks.append(state)
        start = time.perf_counter()
        if total >= 8:
            self.log(f"{description}: {total} batches")

        class _Lines:
            done = 0
            next_report = max(1, total // 4)

            def advance(self, n: int = 1) -> None:
                self.done += n
                with reporter._lock:
                    state.advance(n)
                if total >= 8 and self.done >= self.next_report and self.done < total:
                    reporter.log(f"{description}: {self.done}/{total}")
                    self.next_report += max(1, total // 4)

        try:
            yield _Lines()
        finally:
            with self._lock:
                self._tasks.remove(state)
        self.log(f"{description}: done in {time.perf_counter() - start:.1f}s")
