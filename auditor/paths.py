"""Path types for plugin params: relative paths are resolved against the spec file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, ValidationInfo


def _base_dir(info: ValidationInfo) -> Path | None:
    ctx = info.context or {}
    base = ctx.get("base_dir")
    return Path(base) if base is not None else None


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = _base_dir(info)
    value = value.expanduser()
    if base is not None and not value.is_absolute():
        value = base / value
    return Path(value).resolve() if base is not None else value


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    value = _resolve(value, info)
    if _base_dir(info) is not None and not value.is_file():
        what = "is a folder, not a file" if value.is_dir() else "does not exist"
        raise ValueError(f"file {value} {what}")
    return value


def _existing_dir(value: Path, info: ValidationInfo) -> Path:
    value = _resolve(value, info)
    if _base_dir(info) is not None and not value.is_dir():
        what = "is a file, not a folder" if value.is_file() else "does not exist"
        raise ValueError(f"folder {value} {what}")
    return value


#: A path relative to the spec file (need not exist).
SpecPath = Annotated[Path, AfterValidator(_resolve)]
#: A file that must exist, relative to the spec file.
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
#: A folder that must exist, relative to the spec file.
ExistingDir = Annotated[Path, AfterValidator(_existing_dir)]
