"""Model source ``torchscript``: a module saved with ``torch.jit.save``."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import ClassVar, cast

import torch
from pydantic import BaseModel, Field

from auditor.errors import SpecError
from auditor.hashing import sha256_file
from auditor.models.base import LoadedModel, ModelSource
from auditor.paths import ExistingFile
from auditor.plugin import Params as PluginParams

PATH_LOC = ("model", "path")


class TorchScriptModelSource(ModelSource):
    """A TorchScript archive (``torch.jit.save``): code and weights in one file, no import.

    Layer output shapes are not available for it: forward hooks do not work on script
    modules.
    """

    name: ClassVar[str] = "torchscript"

    class Params(PluginParams):
        path: ExistingFile = Field(description="The TorchScript file (torch.jit.save).")

    def load(self, params: BaseModel) -> LoadedModel:
        params = cast(TorchScriptModelSource.Params, params)
        module = load_torchscript(params.path)
        return LoadedModel(
            module=self.finish(module),
            source=self.name,
            description=f"TorchScript {module.original_name} from {params.path.name}",
            weights_path=params.path,
            weights_sha256=sha256_file(params.path),
        )


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """``torch.jit.load`` on CPU; a file that is not TorchScript is a ``SpecError``."""
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated upstream but is still how these files are read.
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        reason = str(exc).split(". This is an internal miniz error")[0].strip()
        raise SpecError.at(
            PATH_LOC, f"file {path} is not a TorchScript archive ({reason}){_hint(path)}"
        ) from exc


def _hint(path: Path) -> str:
    """Say what the file seems to be instead, when that is easy to tell."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return ""
    if any(n.endswith("/data.pkl") for n in names):
        return (
            "; it looks like a torch.save file: use source: python or torchvision with "
            "weights: instead"
        )
    return ""
