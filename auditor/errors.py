"""Exceptions for users. Only the CLI turns them into messages and exit codes.

Exit codes (design.md): 0 every check passed, 1 a check failed, 2 the spec or the
command line is invalid, 3 the run failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    """``("explainers", 1, "params", "n_steps")`` -> ``explainers[1].params.n_steps``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec, with where it is."""

    message: str
    loc: Loc = ()
    file: str | None = None
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.file is None and not self.loc:
            return self.message  # a command-line problem: no place in a spec to point at
        where = self.file or "<spec>"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        path = f" {format_loc(self.loc)}:" if self.loc else ""
        return f"{where}{path} {self.message}"


class AuditorError(Exception):
    """Base of every error meant for a user (no traceback is shown)."""

    exit_code = 3


class SpecError(AuditorError):
    """The spec (or the command line) is invalid. Carries every issue at once."""

    exit_code = 2

    def __init__(self, issues: Iterable[SpecIssue]) -> None:
        self.issues: list[SpecIssue] = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))

    @classmethod
    def at(cls, loc: Loc, message: str) -> SpecError:
        """An error at a spec path whose line is filled in later (see ``SpecDocument``)."""
        return cls([SpecIssue(message, tuple(loc))])


class UsageError(SpecError):
    """The command line is invalid (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__([SpecIssue(message)])

    def __str__(self) -> str:
        return self.issues[0].message


class PluginError(AuditorError):
    """A plugin is badly written or registered (names the plugin and what is wrong)."""


class RunError(AuditorError):
    """The run failed: the model did not load, an explainer raised, ..."""

    exit_code = 3


class InternalError(AuditorError):
    """An unexpected exception: a bug in auditor or in a plugin outside an explainer.

    Exit 3 like any failed run; the traceback is in ``log`` (``<run folder>/error.log``, or
    a temporary file when there is no run folder yet), never on the terminal.
    """

    exit_code = 3

    def __init__(self, error: BaseException, log: Path) -> None:
        self.error = error
        self.log = log
        super().__init__(f"{type(error).__name__}: {error} (traceback: {log})")


@dataclass
class Collector:
    """Gathers issues so that validation reports every error at once."""

    issues: list[SpecIssue] = field(default_factory=list)

    def add(self, loc: Sequence[str | int], message: str) -> None:
        self.issues.append(SpecIssue(message, tuple(loc)))

    def extend(self, issues: Iterable[SpecIssue]) -> None:
        self.issues.extend(issues)

    def raise_if_any(self) -> None:
        if self.issues:
            raise SpecError(self.issues)
