"""``--resume RUN_DIR``: finish a run with exactly the inputs it was started with, or refuse.

A run folder records what its run started from in ``inputs.json``: the spec file's path,
the ``--set`` overrides, the sha256 of the weights, and (once predictions are made) of the
data slice. ``--resume`` runs the spec as run (the folder's ``spec.yaml``, its relative
paths read from the original spec file's folder) with the run's overrides. A SPEC argument
whose bytes differ from the run's ``spec.yaml``, a ``--set`` that differs from the run's,
changed weights or a changed data slice are refused (exit 2), saying what differs: mixing
them would mix attributions of two different audits in one folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from auditor.errors import SpecError, SpecIssue, UsageError
from auditor.run_folder import RunFolder
from auditor.spec import ValidatedSpec, load_spec
from auditor.spec.document import parse_document
from auditor.spec.load import validate_document
from auditor.spec.overrides import apply_overrides, parse_key

INPUTS = "inputs.json"


@dataclass(frozen=True)
class RunInputs:
    """What a run was started from (``inputs.json`` in its folder)."""

    spec: str  # absolute path of the spec file given to ``auditor run``
    overrides: tuple[str, ...] = ()
    weights_sha256: str | None = None
    data_sha256: str | None = None

    @classmethod
    def read(cls, folder: RunFolder) -> RunInputs | None:
        """The folder's record, or None for a folder made before auditor kept one."""
        path = folder.path / INPUTS
        if not path.is_file():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            spec=str(data["spec"]),
            overrides=tuple(data.get("overrides", ())),
            weights_sha256=data.get("weights_sha256"),
            data_sha256=data.get("data_sha256"),
        )

    def write(self, folder: RunFolder) -> None:
        folder.write_json(INPUTS, {**asdict(self), "overrides": list(self.overrides)})


def spec_to_run(
    spec_path: Path | None, resume: Path | None, overrides: tuple[str, ...]
) -> tuple[ValidatedSpec, tuple[str, ...]]:
    """The validated spec a run executes, and the overrides it runs with.

    A new run: SPEC with the command line's ``--set``. A resumed run: the run's own spec
    and overrides; a SPEC or ``--set`` given with ``--resume`` must agree with them.
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
    doc = parse_document(folder.file("spec.yaml").read_text(encoding="utf-8"), Path(inputs.spec))
    if overrides:
        doc.data = apply_overrides(doc, overrides)
    return validate_document(doc, plan=False), overrides


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
        elif _value(item) != _value(theirs[key]):
            problems.append(
                f"--resume {folder.path}: --set {item} differs from the run's {theirs[key]}"
            )
    if problems:
        raise SpecError([SpecIssue(p) for p in problems])
    return recorded


def refuse_other_spec(folder: RunFolder, spec_path: Path) -> None:
    """SPEC must be byte for byte the spec the run started with."""
    run_spec = folder.file("spec.yaml")
    try:
        given = spec_path.read_bytes()
    except OSError as exc:
        raise UsageError(f"spec file {spec_path} cannot be read ({exc.strerror})") from None
    if given == run_spec.read_bytes():
        return
    ours = given.decode("utf-8", errors="replace").splitlines()
    theirs = run_spec.read_text(encoding="utf-8", errors="replace").splitlines()
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


def _value(item: str) -> Any:
    raw = item.partition("=")[2]
    try:
        return YAML(typ="safe", pure=True).load(raw) if raw.strip() else ""
    except YAMLError:
        return raw
