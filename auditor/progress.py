"""Progress: a rich bar on a terminal, plain log lines otherwise, nothing with --quiet."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


class Task(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Reporter:
    """Tells the user what the run is doing. Never affects results or exit codes."""

    def __init__(self, mode: str = "auto", stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "log"
        self.mode = mode
        self._progress: Progress | None = None
        self._t0 = time.perf_counter()

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
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
            self._progress = None

    def log(self, message: str) -> None:
        if self.mode == "quiet":
            return
        if self._progress is not None:
            self._progress.console.print(message, markup=False, highlight=False)
        else:
            elapsed = time.perf_counter() - self._t0
            print(f"[{elapsed:7.1f}s] {message}", file=self.stream, flush=True)

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
        start = time.perf_counter()
        if total >= 8:
            self.log(f"{description}: {total} batches")

        class _Lines:
            done = 0
            next_report = max(1, total // 4)

            def advance(self, n: int = 1) -> None:
                self.done += n
                if total >= 8 and self.done >= self.next_report and self.done < total:
                    reporter.log(f"{description}: {self.done}/{total}")
                    self.next_report += max(1, total // 4)

        yield _Lines()
        self.log(f"{description}: done in {time.perf_counter() - start:.1f}s")
