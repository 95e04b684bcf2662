"""``--resume RUN_DIR``: finish a run with exactly the inputs it was started with, or refuse.

A run folder records what its run started from in ``inputs.json``: the spec file's path,
the ``--set`` overrides, the sha256 of the weights, and (once predictions are made) of the
data slice. ``--resume`` runs the spec as run (the folder's ``spec.yaml``, its relative
paths read from the original spec file's folder) with the run's overrides. A SPEC argument
whose bytes differ from the run's ``spec.yaml``, a ``--set`` that differs from the run's,
changed weights or a changed data slice are refused (exit 2), saying what differs: mixing
them would mix attributions of two different audits in one folder.

Resuming trusts the folder: its ``spec.yaml`` is run as it is, and a spec may name Python
code to import (``model.class``), like any spec. So a resume without SPEC says first which
spec and ``--set`` values it runs, and a folder whose records cannot be read is refused.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from auditor.errors import SpecError, SpecIssue, UsageError
from auditor.run_folder import RunFolder
from auditor.spec import ValidatedSpec, load_spec
from auditor.spec.document import parse_document, read_spec_bytes, read_spec_text
from auditor.spec.load import validate_document
from auditor.spec.overrides import apply_overrides, parse_key, set_value

INPUTS = "inputs.json"
#: Bytes of ``inputs.json`` read at most (auditor writes a few hundred).
MAX_INPUTS_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RunInputs:
    """What a run was started from (``inputs.json`` in its folder)."""

    spec: str  # absolute path of the spec file given to ``auditor run``
    overrides: tuple[str, ...] = ()
    weights_sha256: str | None = None
    data_sha256: str | None = None

    @classmethod
    def read(cls, folder: RunFolder) -> RunInputs | None:
        """The folder's record, or None for a folder made before auditor kept one.

        A record that cannot be read (not JSON, a key missing or of the wrong type, too
        large) is a ``UsageError``: nothing of the folder is run on a guess.
        """
        path = folder.path / INPUTS
        if not path.is_file():
            return None
        try:
            return cls._parse(path)
        except _Unreadable as exc:
            raise UsageError(f"--resume {folder.path}: {INPUTS} is not readable ({exc})") from None

    @classmethod
    def _parse(cls, path: Path) -> RunInputs:
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_INPUTS_BYTES + 1)
        except OSError as exc:
            raise _Unreadable(exc.strerror or type(exc).__name__) from None
        if len(raw) > MAX_INPUTS_BYTES:
            raise _Unreadable(f"larger than {MAX_INPUTS_BYTES // 2**20} MB")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _Unreadable(f"not UTF-8 text: byte 0x{raw[exc.start]:02x}") from None
        except json.JSONDecodeError as exc:
            raise _Unreadable(
                f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            ) from None
        except RecursionError:
            raise _Unreadable("not JSON: nested too deep") from None
        if not isinstance(data, dict):
            raise _Unreadable(f"expected a JSON object, got {_json_type(data)}")
        spec = data.get("spec")
        if spec is None:
            raise _Unreadable("no 'spec'")
        if not isinstance(spec, str) or not Path(spec).is_absolute():
            raise _Unreadable(f"'spec' is not an absolute path: {_shown(spec)}")
        overrides = data.get("overrides", [])
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            raise _Unreadable(f"'overrides' is not a list of texts: {_shown(overrides)}")
        hashes = {}
        for key in ("weights_sha256", "data_sha256"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise _Unreadable(f"'{key}' is not text: {_shown(value)}")
            hashes[key] = value
        return cls(spec=spec, overrides=tuple(overrides), **hashes)

    def write(self, folder: RunFolder) -> None:
        folder.write_json(INPUTS, {**asdict(self), "overrides": list(self.overrides)})


class _Unreadable(Exception):
    """What is wrong with an ``inputs.json``."""


def _json_type(value: Any) -> str:
    names = {list: "a list", str: "a text", bool: "true or false", type(None): "null"}
    return names.get(type(value), "a number")


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def spec_to_run(
    spec_path: Path | None,
    resume: Path | None,
    overrides: tuple[str, ...],
    log: Callable[[str], None] | None = None,
) -> tuple[ValidatedSpec, tuple[str, ...]]:
    """The validated spec a run executes, and the overrides it runs with.

    A new run: SPEC with the command line's ``--set``. A resumed run: the run's own spec
    and overrides; a SPEC or ``--set`` given with ``--resume`` must agree with them. Without
    SPEC, ``log`` is told which spec and overrides are run before anything is read.
    """
    if resume is None:
        if spec_path is None:
            raise UsageError("missing SPEC: auditor run SPEC, or auditor run --resume RUN_DIR")
        return load_spec(spec_path, overrides, plan=False), overrides
    folder = RunFolder.open(resume)
    inputs = RunInputs.read(folder)
    if inputs is not None:
        overrides = run_overrides(folder, overrides, inputs.overrides)
    if spec_path is not None:
        refuse_other_spec(folder, Path(spec_path))
        return load_spec(spec_path, overrides, plan=False), overrides
    if inputs is None:
        raise UsageError(
            f"--resume {folder.path}: the folder does not record which spec file it ran "
            f"(no {INPUTS}: made by an older auditor); give that SPEC too"
        )
    if log is not None:
        log(resume_notice(folder, inputs))
    # The folder's copy is what runs (errors name it); relative paths in it resolve from the
    # folder of the spec file the run was started with.
    source = folder.file("spec.yaml")
    doc = parse_document(read_spec_text(source), Path(inputs.spec), source=source)
    if overrides:
        doc.data = apply_overrides(doc, overrides)
    return validate_document(doc, plan=False), overrides


def resume_notice(folder: RunFolder, inputs: RunInputs) -> str:
    """``resuming DIR with its spec as run (SPEC) and --set a=1``: what a resume runs."""
    sets = " ".join(f"--set {shlex.quote(item)}" for item in inputs.overrides)
    return f"resuming {folder.path} with its spec as run ({inputs.spec}) " + (
        f"and {sets}" if sets else "and no --set"
    )


def run_overrides(
    folder: RunFolder, given: tuple[str, ...], recorded: tuple[str, ...]
) -> tuple[str, ...]:
    """The run's overrides; each ``--set`` given again must set what the run set."""
    theirs = {_key(item): item for item in recorded}
    problems = []
    for item in given:
        key = _key(item)
        if key not in theirs:
            name = item.partition("=")[0].strip()
            problems.append(
                f"--resume {folder.path}: --set {item} was not given to the run "
                f"(it ran with the spec's own {name})"
            )
        elif set_value(item) != set_value(theirs[key]):
            problems.append(
                f"--resume {folder.path}: --set {item} differs from the run's {theirs[key]}"
            )
    if problems:
        raise SpecError([SpecIssue(p) for p in problems])
    return recorded


def refuse_other_spec(folder: RunFolder, spec_path: Path) -> None:
    """SPEC must be byte for byte the spec the run started with."""
    given = read_spec_bytes(spec_path)
    run_spec = read_spec_bytes(folder.file("spec.yaml"))
    if given == run_spec:
        return
    ours = given.decode("utf-8", errors="replace").splitlines()
    theirs = run_spec.decode("utf-8", errors="replace").splitlines()
    line = next(
        (i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b),
        min(len(ours), len(theirs)),
    )

    def text(lines: list[str]) -> str:
        return repr(lines[line]) if line < len(lines) else "the end of the file"

    raise UsageError(
        f"--resume {folder.path}: {spec_path} differs from the run's spec.yaml at line "
        f"{line + 1}: {text(ours)} where the run has {text(theirs)} "
        "(leave out SPEC to resume with the spec as run)"
    )


def refuse_changed_weights(folder: RunFolder, weights_sha256: str | None) -> None:
    """The weights loaded now must hash as they did when the run started."""
    inputs = RunInputs.read(folder)
    before = inputs.weights_sha256 if inputs else None
    if before and weights_sha256 and before != weights_sha256:
        raise UsageError(
            f"--resume {folder.path}: the model's weights changed since the run started "
            f"(sha256 {before[:12]} then, {weights_sha256[:12]} now)"
        )


def record_data(folder: RunFolder, data_sha256: str, *, resuming: bool) -> None:
    """Record the data slice's hash; a resumed run must see the same slice as before."""
    inputs = RunInputs.read(folder)
    if inputs is None:
        return
    before = inputs.data_sha256
    if resuming and before and before != data_sha256:
        raise UsageError(
            f"--resume {folder.path}: the data slice changed since the run started "
            f"(sha256 {before[:12]} then, {data_sha256[:12]} now)"
        )
    if before != data_sha256:
        replace(inputs, data_sha256=data_sha256).write(folder)


def _key(item: str) -> tuple[str | int, ...]:
    return tuple(parse_key(item.partition("=")[0].strip()))
