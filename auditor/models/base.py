"""Base of model sources and what they return."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel
from torch import nn

from auditor.plugin import Plugin


@dataclass
class LoadedModel:
    """A model ready to audit: in eval mode, on CPU, with where its weights came from."""

    module: nn.Module
    source: str
    description: str
    weights_path: Path | None = None
    weights_sha256: str | None = None


class ModelSource(Plugin):
    """Turns the spec's ``model:`` block into a ``LoadedModel``.

    Errors that are the spec's fault (a missing file, an import path that does not
    resolve, weights that do not fit) are raised as ``SpecError.at(("model", field), msg)``
    so that the CLI can name the spec line.
    """

    kind: ClassVar[str] = "model"

    def load(self, params: BaseModel) -> LoadedModel:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def finish(module: nn.Module) -> nn.Module:
        """Eval mode, no gradients for parameters, CPU."""
        module = module.to("cpu").eval()
        for p in module.parameters():
            p.requires_grad_(False)
        return module
