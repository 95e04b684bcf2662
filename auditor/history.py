"""The run index of an audit: ``<output>/<name>/index.jsonl``, one JSON line per finished run.

Each line (an ``IndexEntry``) holds the run's id and folder, when it finished, its verdict
and exit code, the sha256 of its spec, weights and data slice, each check's status and the
values of the metrics the checks name. ``append`` adds a line in O(1) under an exclusive
``flock`` on a sidecar lock file, as a single ``os.write`` on an ``O_APPEND`` descriptor
followed by ``fsync``: two runs of the same audit finishing at once cannot interleave their
lines, and a run killed mid-write leaves at most one torn line, which every reader skips
(the next ``append`` starts a fresh line after it).

``previous`` reads the file from its end backwards in blocks (``entries_backwards``, which
the report's trend section reads too), so finding the last finished run costs the same at
10 or 100,000 lines. ``read`` and ``history_table`` (``auditor
history``) read every line; a run whose folder was deleted, or that has no results.json,
is skipped with a warning. Runs made before the index existed are read from their
results.json.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auditor.errors import UsageError

#: The index file inside an audit folder.
INDEX = "index.jsonl"
#: The sidecar file ``append`` locks (never removed: removing a lock file races).
LOCK = "index.jsonl.lock"
#: Bytes read per step when reading the index backwards.
BLOCK = 64 * 1024
#: Exit codes of a run that finished: its checks passed (0) or one failed (1).
FINISHED = (0, 1)
#: Characters of a sha256 shown in the history table.
HASH_PREFIX = 8

Warn = Callable[[str], None]
#: ``<explainer>.<metric>`` or ``model.<metric>``, as a metric check names it.
_METRIC = re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_][\w.]*$")


class IndexEntry(BaseModel):
    """One finished run, as one line of ``index.jsonl``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    run_id: str = Field(min_length=1)
    path: str = Field(min_length=1, description="The run folder, relative to the audit folder.")
    finished: str = Field(description="When the run finished (ISO 8601, UTC).")
    status: str = Field(description="passed, failed or error (results.json's status).")
    exit_code: int
    spec_sha256: str | None = None
    weights_sha256: str | None = None
    data_sha256: str | None = None
    checks: dict[str, str] = Field(default_factory=dict, description="{check name: status}")
    metrics: dict[str, float | None] = Field(
        default_factory=dict,
        description="{'<explainer>.<metric>' or 'model.<metric>': value} for model.accuracy "
        "and every metric a check names.",
    )

    @field_validator("path")
    @classmethod
    def _inside(cls, value: str) -> str:
        parts = PurePosixPath(value).parts
        if value.startswith(("/", "\\")) or ".." in parts or not parts:
            raise ValueError(f"run folder {value!r} is not inside the audit folder")
        return value

    def line(self) -> bytes:
        """The entry as one line of the index, newline included."""
        return (self.model_dump_json() + "\n").encode("utf-8")

    @property
    def finished_at(self) -> datetime | None:
        """``finished`` parsed, or None when it is not an ISO time."""
        try:
            when = datetime.fromisoformat(self.finished)
        except ValueError:
            return None
        return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- writing ------------------------------------------------------------------------------
def entry_from_results(folder: Path, results: dict[str, Any]) -> IndexEntry:
    """The index line of the run in ``folder`` whose results.json holds ``results``.

    ``metrics`` has ``model.accuracy`` and the value of every metric the run's checks name
    (``metric:`` and ``metric_change:`` in its spec.yaml with its ``--set`` overrides
    applied; the metric checks of results.json when the spec cannot be read), None where a
    value is missing.
    """
    folder = Path(folder)
    provenance = results.get("provenance") or {}
    finished = provenance.get("finished") or _mtime(folder / "results.json")
    checks: dict[str, str] = {}
    for check in results.get("checks") or []:
        name = str(check.get("name"))
        key, n = name, 2
        while key in checks:  # two checks with one name keep both
            key, n = f"{name} ({n})", n + 1
        checks[key] = str(check.get("status"))
    names = checked_metrics(folder, results)
    return IndexEntry(
        run_id=str(results.get("run_id") or folder.name),
        path=folder.name,
        finished=str(finished),
        status=str(results.get("status")),
        exit_code=int(results.get("exit_code", 3)),
        spec_sha256=provenance.get("spec_sha256"),
        weights_sha256=provenance.get("weights_sha256"),
        data_sha256=provenance.get("data_sha256"),
        checks=checks,
        metrics=_metric_values(names, results),
    )


def checked_metrics(folder: Path, results: dict[str, Any]) -> list[str]:
    """``model.accuracy`` and the metrics the run's checks name, in the spec's order."""
    names = ["model.accuracy"]
    try:
        names += _spec_metrics(Path(folder) / "spec.yaml", provenance_overrides(results))
    except Exception:  # unreadable spec: what results.json's metric checks name
        names += [
            str(c.get("name"))
            for c in results.get("checks") or []
            if c.get("kind") == "metric" and _METRIC.match(str(c.get("name")))
        ]
    return list(dict.fromkeys(names))


def provenance_overrides(results: dict[str, Any]) -> list[str]:
    """The ``--set`` overrides the run ran with (results.json's provenance)."""
    overrides = (results.get("provenance") or {}).get("overrides") or []
    return [str(o) for o in overrides]


def _spec_metrics(spec: Path, overrides: list[str]) -> list[str]:
    from auditor.spec.document import load_document
    from auditor.spec.overrides import apply_overrides

    doc = load_document(spec)
    data = apply_overrides(doc, overrides) if overrides else doc.data
    names = []
    for check in (data or {}).get("checks") or []:
        if not isinstance(check, dict):
            continue
        for key in ("metric", "metric_change"):
            value = check.get(key)
            if isinstance(value, str) and _METRIC.match(value):
                names.append(value)
    return names


def _metric_values(names: list[str], results: dict[str, Any]) -> dict[str, float | None]:
    """Each metric's value as a check reads it (``auditor.checks.metric_value``)."""
    from auditor.checks import metric_value
    from auditor.results import ExplainerResult, PredictionSummary

    try:
        predictions = PredictionSummary.model_validate(results["predictions"])
        explainers = {
            k: ExplainerResult.model_validate(v) for k, v in (results["explainers"] or {}).items()
        }
    except (KeyError, TypeError, ValidationError):  # another schema: the checks' own values
        by_name = {c.get("name"): c.get("value") for c in results.get("checks") or []}
        return {name: _number(by_name.get(name)) for name in names}
    values = {}
    for name in names:
        value, _ = metric_value(name, predictions, explainers, results.get("model_metrics"))
        values[name] = _number(value)
    return values


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _mtime(path: Path) -> str:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()
    except OSError:
        return ""


@contextmanager
def _locked(audit_dir: Path, exclusive: bool) -> Iterator[None]:
    """``flock`` on the sidecar lock file; a shared lock is skipped where it cannot be had
    (no lock file yet, a read-only folder): readers tolerate a line being written."""
    path = audit_dir / LOCK
    try:
        fd = (
            os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            if exclusive
            else os.open(path, os.O_RDONLY)
        )
    except OSError:
        if exclusive:
            raise
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def append(audit_dir: Path, entry: IndexEntry) -> None:
    """Add ``entry`` as the last line of ``audit_dir/index.jsonl`` (created if missing).

    O(1) whatever the index's length: under an exclusive lock, one ``os.write`` of the whole
    line on an ``O_APPEND`` descriptor, then ``fsync``. A torn last line left by a killed
    writer is closed with a newline first, so that it spoils no other line.
    """
    audit_dir = Path(audit_dir)
    audit_dir.mkdir(parents=True, exist_ok=True)
    data = entry.line()
    with _locked(audit_dir, exclusive=True):
        fd = os.open(audit_dir / INDEX, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            written = os.write(fd, data)
            while written < len(data):  # a short write (a full disk raises instead)
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if not size:  # a new file: make its name durable too
            _fsync_dir(audit_dir)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def record(folder: Path, results: dict[str, Any]) -> IndexEntry:
    """Index the finished run in ``folder`` (``<output>/<name>/<run_id>``) in its audit
    folder; what the runner calls once results.json is written."""
    entry = entry_from_results(folder, results)
    append(Path(folder).parent, entry)
    return entry


# -- reading ------------------------------------------------------------------------------
def _parse(line: bytes) -> IndexEntry:
    """An index line; ValueError (with the reason) when it is not one."""
    try:
        return IndexEntry.model_validate_json(line)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where + ': ' if where else ''}{first['msg']}") from None


def _missing(audit_dir: Path, entry: IndexEntry) -> str | None:
    """Why the entry's run cannot be used (folder deleted, no results.json), or None."""
    if os.path.isfile(os.path.join(audit_dir, entry.path, "results.json")):  # one stat
        return None
    folder = audit_dir / entry.path
    if not folder.is_dir():
        return f"run {entry.run_id}: its folder {folder} was deleted; skipped"
    return f"run {entry.run_id}: {folder} has no results.json (incomplete); skipped"


def read(audit_dir: Path, *, warn: Warn | None = None) -> list[IndexEntry]:
    """The runs of ``audit_dir/index.jsonl`` in the order they were appended.

    Skips, calling ``warn(message)`` for each: lines that are not valid entries (a torn last
    line from a killed run, an edited line), runs whose folder was deleted or has no
    results.json. A run indexed twice (``--resume`` after a finished run) keeps its last
    line. No index: an empty list.
    """
    return _read_index(Path(audit_dir), warn)[0]


def _read_index(audit_dir: Path, warn: Warn | None) -> tuple[list[IndexEntry], set[str]]:
    """``read``'s entries, and the folder names of every valid line (skipped runs too)."""
    path = audit_dir / INDEX
    say = warn or (lambda _message: None)
    try:
        with _locked(audit_dir, exclusive=False):
            raw = path.read_bytes()
    except FileNotFoundError:
        return [], set()
    lines = raw.split(b"\n")
    torn = lines[-1] != b""  # the file does not end with a newline
    latest: dict[str, IndexEntry] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = _parse(line)
        except ValueError as exc:
            what = "torn last line" if torn and number == len(lines) else f"line {number}"
            say(f"{path}: {what} is not a valid run entry ({exc}); skipped")
            continue
        latest.pop(entry.run_id, None)  # keep the run at the place of its last line
        latest[entry.run_id] = entry
    entries = []
    for entry in latest.values():
        why = _missing(audit_dir, entry)
        if why:
            say(why)
        else:
            entries.append(entry)
    return entries, {PurePosixPath(e.path).parts[0] for e in latest.values()}


def lines_backwards(path: Path, block: int = BLOCK) -> Iterator[bytes]:
    """The file's lines, last first, reading ``block`` bytes at a time from the end: a
    reader that stops early reads only the end of the file, however long it is."""
    with open(path, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        rest = b""  # the start of the line that straddles the block boundary
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            lines = (fh.read(end - start) + rest).split(b"\n")
            end = start
            rest = lines[0]
            yield from reversed(lines[1:])
        yield rest


def entries_backwards(path: Path) -> Iterator[IndexEntry]:
    """The runs of the index file ``path``, last first, each once: a run indexed twice as
    its last line. Blank and invalid lines (a torn last line) are skipped. Read from the end
    (``lines_backwards``), so a reader that stops early reads only the end of the file."""
    seen: set[str] = set()
    for line in lines_backwards(path):
        if not line.strip():
            continue
        try:
            entry = _parse(line)
        except ValueError:
            continue
        if entry.run_id in seen:  # a later line of this run decided already
            continue
        seen.add(entry.run_id)
        yield entry


def previous(
    audit_dir: Path, *, exclude: str | None = None, warn: Warn | None = None
) -> IndexEntry | None:
    """The last finished run (exit code 0 or 1) of the audit whose folder is still there.

    Reads ``index.jsonl`` from its end: the cost does not grow with the history. Skips the
    run ``exclude`` (the run asking), runs that failed to run (exit 2, 3), torn or invalid
    lines and runs whose folder was deleted or has no results.json (``warn`` is told of
    those). Without an index, the run folders' results.json are read (runs made before the
    index existed). None when there is no such run.
    """
    audit_dir = Path(audit_dir)
    path = audit_dir / INDEX
    if not path.is_file():
        runs, _ = _scan(audit_dir, set(), warn)
        eligible = [e for e in runs if e.run_id != exclude and e.exit_code in FINISHED]
        return eligible[-1] if eligible else None
    for entry in entries_backwards(path):
        if entry.run_id == exclude or entry.exit_code not in FINISHED:
            continue
        why = _missing(audit_dir, entry)
        if why is None:
            return entry
        if warn:
            warn(why)
    return None


def _scan(audit_dir: Path, indexed: set[str], warn: Warn | None) -> tuple[list[IndexEntry], int]:
    """Entries for the run folders of ``audit_dir`` not in ``indexed`` (by folder name),
    from their results.json, oldest first; and how many folders look like run folders."""
    say = warn or (lambda _message: None)
    entries, folders = [], 0
    try:
        with os.scandir(audit_dir) as found:
            names = sorted(e.name for e in found if e.is_dir())
    except OSError:
        return [], 0
    for name in names:
        if name in indexed:  # known from the index: no need to look inside
            folders += 1
            continue
        child = audit_dir / name
        results_path = child / "results.json"
        if not results_path.is_file() and not (child / "spec.yaml").is_file():
            continue  # not a run folder
        folders += 1
        if not results_path.is_file():
            say(f"run {child.name}: {child} has no results.json (running, killed or failed "
                "before writing it); not listed")  # fmt: skip
            continue
        try:
            results = json.loads(results_path.read_text(encoding="utf-8"))
            entries.append(entry_from_results(child, results))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            say(f"run {child.name}: {results_path} is not readable ({exc}); skipped")
    return _by_time(entries), folders


def _by_time(entries: list[IndexEntry]) -> list[IndexEntry]:
    """Oldest first by ``finished`` (stable: entries without a time keep their place)."""
    floor = datetime.min.replace(tzinfo=UTC)
    return sorted(entries, key=lambda e: e.finished_at or floor)


# -- auditor history ----------------------------------------------------------------------
def history_table(audit_dir: Path, *, as_json: bool, warn: Warn | None = None) -> str:
    """What ``auditor history <output>/<name>`` prints: the audit's runs, newest last.

    Text: a table of run id, finished (UTC), verdict, exit code, checks passed, weights and
    data hash prefixes and the checked metric values, then note lines. JSON: ``{"audit",
    "index", "runs": [entries], "notes", "warnings"}``. Runs that are not in the index
    (made before it existed) are read from their results.json, with a note. Skipped runs
    and lines go to ``warn`` when given, else after the table (and into ``warnings``).

    Raises ``UsageError`` when ``audit_dir`` holds neither an index nor a run folder.
    """
    audit_dir = Path(audit_dir)
    if not audit_dir.is_dir():
        what = "is a file" if audit_dir.exists() else "does not exist"
        raise UsageError(f"{audit_dir} {what}; expected an audit folder <output>/<name>")
    warnings: list[str] = []

    def say(message: str) -> None:
        warnings.append(message)
        if warn:
            warn(message)

    index = audit_dir / INDEX
    has_index = index.is_file()
    entries, indexed = _read_index(audit_dir, say)
    legacy, folders = _scan(audit_dir, indexed, say)
    if not has_index and not folders:
        raise UsageError(_not_an_audit(audit_dir))
    notes = []
    if legacy:
        where = f"not in {index}" if has_index else f"made before {INDEX} existed"
        notes.append(f"{len(legacy)} run(s) {where}: read from their results.json")
    runs = _by_time([*legacy, *entries]) if legacy else entries  # the index: in append order
    if as_json:
        return json.dumps(
            {
                "audit": str(audit_dir),
                "index": str(index) if has_index else None,
                "runs": [e.model_dump(mode="json") for e in runs],
                "notes": notes,
                "warnings": warnings,
            },
            indent=2,
        )
    lines = [_table(runs)] if runs else ["no finished runs"]
    lines += [f"note: {n}" for n in notes]
    if not warn:
        lines += [f"warning: {w}" for w in warnings]
    return "\n".join(lines)


def _not_an_audit(audit_dir: Path) -> str:
    """Why ``audit_dir`` is not an audit folder, and what to pass instead."""
    message = f"{audit_dir} has no {INDEX} and no run folders: it is not an audit folder"
    if (audit_dir / "results.json").is_file() or (audit_dir / "spec.yaml").is_file():
        return (
            f"{audit_dir} is a run folder; list its audit's runs with: "
            f"auditor history {audit_dir.parent}"
        )
    audits = sorted(
        p.name
        for p in audit_dir.iterdir()
        if p.is_dir() and ((p / INDEX).is_file() or any(p.glob("*/results.json")))
    )
    if audits:
        shown = ", ".join(audits[:5]) + (", ..." if len(audits) > 5 else "")
        return (
            f"{message}; it holds the audits {shown}: e.g. auditor history {audit_dir / audits[0]}"
        )
    return message + " (<output>/<name>, the folder of an audit's runs)"


def _short(value: str | None) -> str:
    return value[:HASH_PREFIX] if value else "-"


def _when(entry: IndexEntry) -> str:
    when = entry.finished_at
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if when else entry.finished or "-"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _checks_cell(checks: dict[str, str]) -> str:
    """``2/3 pass``; checks skipped (a baseline check without a baseline run) apart:
    ``1/1 pass, 2 skipped``."""
    skipped = sum(s == "skipped" for s in checks.values())
    passed = sum(s == "pass" for s in checks.values())
    cell = f"{passed}/{len(checks) - skipped} pass"
    return cell + (f", {skipped} skipped" if skipped else "")


def _table(runs: list[IndexEntry]) -> str:
    """A plain text table, one row per run, numbers right-aligned."""
    metrics = list(dict.fromkeys(name for e in runs for name in e.metrics))
    headers = ["run id", "finished (UTC)", "verdict", "exit", "checks", "weights", "data"]
    rows = [
        [
            e.run_id,
            _when(e),
            e.status,
            str(e.exit_code),
            _checks_cell(e.checks),
            _short(e.weights_sha256),
            _short(e.data_sha256),
            *(_value(e.metrics.get(m)) for m in metrics),
        ]
        for e in runs
    ]
    headers += metrics
    right = {3, *range(7, len(headers))}
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        out = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])
