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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    """Where a task stands, for heartbeat lines (times from the reporter's clock)."""

    description: str
    total: int
    started: float
    #: Steps done before this run (a resumed run's finished batches), as the caller says:
    #: no time of this run went into them, so the ETA leaves them out.
    skipped: int = 0
    done: int = 0
    last_advance: float | None = None

    def __post_init__(self) -> None:
        self.done = max(self.done, self.skipped)
        if self.last_advance is None:
            self.last_advance = self.started

    def advance(self, n: int, now: float) -> None:
        self.done += n
        self.last_advance = now

    def line(self, now: float) -> str:
        """``explain kernel_shap: batch 3/10 running, 1m 10s elapsed, ETA 2m 40s``."""
        current = min(self.done + 1, self.total)
        elapsed = now - self.started
        last = self.started if self.last_advance is None else self.last_advance
        if self.done > self.skipped:
            per_batch = (last - self.started) / (self.done - self.skipped)
            left = per_batch * (self.total - self.done) - (now - last)
            eta = f"ETA {fmt_duration(max(left, 0.0))}"
        else:
            eta = f"ETA unknown until batch {current} finishes"
        return (
            f"{self.description}: batch {current}/{self.total} running, "
            f"{fmt_duration(elapsed)} elapsed, {eta}"
        )


class Reporter:
    """Tells the user what the run is doing. Never affects results or exit codes.

    ``clock`` (seconds, monotonic) times heartbeats and ETAs; tests pass their own and call
    :meth:`pulse` instead of waiting for the thread.
    """

    def __init__(
        self,
        mode: str = "auto",
        stream: TextIO | None = None,
        heartbeat: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "log"
        self.mode = mode
        self.heartbeat = heartbeat_interval(heartbeat)
        self._progress: Progress | None = None
        self._t0 = clock()
        self._clock = clock
        self._lock = threading.Lock()
        self._last_line = clock()
        self._last_message = ""
        self._last_message_at = self._last_line
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
            self._last_message, self._last_message_at = message, self._clock()
            self._write(message)

    def _write(self, message: str) -> None:
        """One line out (the caller holds the lock)."""
        self._last_line = self._clock()
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            elapsed = self._clock() - self._t0
            print(f"[{elapsed:7.1f}s] {message}", file=self.stream, flush=True)

    def _heartbeats(self) -> None:
        """Background thread: a line whenever nothing was written for ``heartbeat`` s."""
        while True:
            with self._lock:
                due = self._last_line + self.heartbeat
            if self._stop.wait(max(due - self._clock(), 0.01)):
                return
            self.pulse()

    def pulse(self) -> bool:
        """Write a heartbeat line if nothing was written for ``heartbeat`` s; True if so."""
        with self._lock:
            now = self._clock()
            if now - self._last_line < self.heartbeat:
                return False
            if self._tasks:
                self._write(self._tasks[-1].line(now))
            elif self._last_message:
                since = fmt_duration(now - self._last_message_at)
                self._write(f"still working: {self._last_message} ({since} since it began)")
            else:
                self._write("still working")
            return True

    @contextmanager
    def task(self, description: str, total: int, done: int = 0) -> Iterator[Task]:
        """A unit of work with ``total`` steps (batches), ``done`` of them finished before
        (a resumed run's): they count as done, but not in the time per step."""
        if self._progress is not None:
            progress = self._progress
            task_id = progress.add_task(description, total=total, completed=done)

            class _Bar:
                def advance(self, n: int = 1) -> None:
                    progress.advance(task_id, n)

            yield _Bar()
            progress.update(task_id, completed=total)
            return
        reporter = self
        state = TaskState(description, total, started=self._clock(), skipped=done)
        with self._lock:
            self._tasks.append(state)
        start = self._clock()
        if total >= 8:
            self.log(f"{description}: {total} batches")

        step = max(1, total // 4)

        class _Lines:
            next_report = (done // step + 1) * step

            def advance(self, n: int = 1) -> None:
                with reporter._lock:
                    state.advance(n, reporter._clock())
                    finished = state.done
                if total >= 8 and finished >= self.next_report and finished < total:
                    reporter.log(f"{description}: {finished}/{total}")
                    self.next_report = (finished // step + 1) * step

        try:
            yield _Lines()
        finally:
            with self._lock:
                self._tasks.remove(state)
        self.log(f"{description}: done in {self._clock() - start:.1f}s")
