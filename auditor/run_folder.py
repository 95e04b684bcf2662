"""The run folder (design.md "Run folder"): atomic files and streamed attributions.

Every file is written to a temporary name and renamed into place, so a killed run never
leaves a file that looks finished. Attributions stream batch by batch into a memory-mapped
``attributions/<id>.npy.partial`` with a progress record next to it; ``finish`` renames the
array to ``<id>.npy``. ``--resume`` continues from the last recorded batch.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from auditor.errors import UsageError

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def _place(tmp: str, path: Path) -> None:
    """Give the temporary file ordinary permissions and rename it into place."""
    os.chmod(tmp, _MODE)
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _place(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(data: Any) -> Any:
    """NaN and infinities become null: strict JSON parsers reject them."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: json_safe(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(v) for v in data]
    return data


def atomic_write_json(path: Path, data: Any) -> None:
    text = json.dumps(json_safe(data), indent=2, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
            fh.flush()
            os.fsync(fh.fileno())
        _place(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_run_id() -> str:
    """A sortable timestamp, e.g. ``20261127T134455Z``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")[:-7] + "Z"


@dataclass
class RunFolder:
    """``<output>/<name>/<run_id>/`` and the files in it.

    ``path`` is absolute with symlinks resolved (``create`` and ``open`` make it so), so
    that every file in it is named the same way whatever the working directory.
    """

    path: Path

    @classmethod
    def create(cls, output: Path, name: str, run_id: str | None) -> RunFolder:
        run_id = run_id or new_run_id()
        if not RUN_ID.match(run_id):
            raise UsageError(
                f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-' (not starting "
                "with '.' or '-')"
            )
        path = Path(output).resolve() / name / run_id
        if path.exists():
            raise UsageError(
                f"run folder {path} already exists; pick another --run-id or use --resume {path}"
            )
        try:
            path.mkdir(parents=True)
        except OSError as exc:  # a file in the way, no permission: the output is wrong
            raise UsageError(f"cannot create the run folder {path}: {exc.strerror}") from None
        return cls(path)

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        path = Path(path).resolve()
        if not (path / "spec.yaml").is_file():
            raise UsageError(f"{path} is not a run folder (no spec.yaml in it)")
        return cls(path)

    @classmethod
    def open_finished(cls, path: Path) -> RunFolder:
        """A run folder whose results.json is there and readable (what a report needs)."""
        folder = cls.open(path)
        results = folder.path / "results.json"
        if not results.is_file():
            raise UsageError(
                f"{folder.path} has no results.json: the run did not finish; "
                f"finish it with: auditor run --resume {folder.path}"
            )
        try:
            json.loads(results.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{results} is not readable JSON ({exc})") from None
        return folder

    @property
    def run_id(self) -> str:
        return self.path.name

    def file(self, relative: str) -> Path:
        """A path inside the run folder; refuses anything that would leave it."""
        target = (self.path / relative).resolve()
        if not target.is_relative_to(self.path.resolve()):
            raise ValueError(f"{relative!r} is outside the run folder")
        return target

    def attribution_path(self, explainer_id: str) -> Path:
        return self.file(f"attributions/{explainer_id}.npy")

    def write_text(self, relative: str, text: str) -> Path:
        target = self.file(relative)
        atomic_write_text(target, text)
        return target

    def write_bytes(self, relative: str, data: bytes) -> Path:
        target = self.file(relative)
        atomic_write_bytes(target, data)
        return target

    def write_json(self, relative: str, data: Any) -> Path:
        target = self.file(relative)
        atomic_write_json(target, data)
        return target

    def read_json(self, relative: str) -> Any:
        return json.loads(self.file(relative).read_text(encoding="utf-8"))


class AttributionWriter:
    """Streams ``(N, *shape)`` float32 attributions batch by batch through a memory map.

    After each flushed batch, the batch's per-sample diagnostics are appended as one JSON
    line to ``<id>.stats.jsonl`` (naming its batch) and then a progress record
    (``<id>.progress.json``: the shape and how many lines are trusted) is written atomically,
    so a resumed run knows exactly what is complete. Batches may arrive in any order (shards
    of a Ray run finish out of order). Both writes have a constant size per batch, however
    long the slice. A resumed run trusts a batch only when both its record and its line are
    there.
    """

    def __init__(self, final: Path, shape: tuple[int, ...], *, resume: bool) -> None:
        self.final = final
        self.partial = final.with_suffix(".npy.partial")
        self.progress_path = final.with_suffix(".progress.json")
        self.stats_path = final.with_suffix(".stats.jsonl")
        self.shape = shape
        final.parent.mkdir(parents=True, exist_ok=True)
        #: Per-sample diagnostics of each batch written, by batch index.
        self.batch_stats: dict[int, dict[str, list[float]]] = {}
        if resume and self.partial.exists() and self.progress_path.exists():
            progress = json.loads(self.progress_path.read_text())
            if tuple(progress["shape"]) == shape:
                lines = self._stats_lines(int(progress["batches"]))
                for line in lines:
                    record = json.loads(line)
                    self.batch_stats[int(record["batch"])] = record["stats"]
                atomic_write_text(self.stats_path, "".join(lines))  # drop any line past them
                self.array = np.lib.format.open_memmap(self.partial, mode="r+")
                return
        self.array = np.lib.format.open_memmap(
            self.partial, mode="w+", dtype=np.float32, shape=shape
        )
        atomic_write_text(self.stats_path, "")

    @property
    def done(self) -> frozenset[int]:
        """The batches written (by this writer or the run it resumes)."""
        return frozenset(self.batch_stats)

    @property
    def done_batches(self) -> int:
        return len(self.batch_stats)

    @property
    def stats(self) -> dict[str, list[float]]:
        """Every written batch's diagnostics, concatenated in batch (sample) order."""
        out: dict[str, list[float]] = {}
        for index in sorted(self.batch_stats):
            for key, vals in self.batch_stats[index].items():
                out.setdefault(key, []).extend(vals)
        return out

    def _stats_lines(self, limit: int) -> list[str]:
        """The first ``limit`` complete lines of the stats file, each a distinct batch."""
        if not self.stats_path.exists():
            return []
        lines: list[str] = []
        seen: set[int] = set()
        for i, line in enumerate(self.stats_path.read_text().splitlines(keepends=True)):
            if i >= limit or not line.endswith("\n"):
                break
            try:
                index = json.loads(line)["batch"]
                valid = isinstance(index, int) and index >= 0 and index not in seen
            except (ValueError, KeyError, TypeError):
                valid = False
            if not valid:
                break
            seen.add(index)
            lines.append(line)
        return lines

    def write(
        self, batch_index: int, start: int, values: np.ndarray, stats: dict[str, list[float]]
    ) -> None:
        self.array[start : start + len(values)] = values
        self.array.flush()
        self.batch_stats[batch_index] = stats
        with open(self.stats_path, "a", encoding="utf-8") as fh:  # NaN round-trips here
            fh.write(json.dumps({"batch": batch_index, "stats": stats}) + "\n")
        atomic_write_json(
            self.progress_path, {"shape": list(self.shape), "batches": len(self.batch_stats)}
        )

    def finish(self) -> Path:
        self.array.flush()
        del self.array
        with open(self.partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.partial, self.final)
        self.progress_path.unlink(missing_ok=True)
        self.stats_path.unlink(missing_ok=True)
        return self.final

    def abandon(self) -> None:
        """Drop the memory map (after a failure); the partial files stay for --resume."""
        if hasattr(self, "array"):
            del self.array


def copy_file(source: Path, target: Path) -> None:
    """Copy through a temporary file and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        _place(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
