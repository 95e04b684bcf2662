"""Model source ``torchvision``: an architecture from ``torchvision.models``, never downloaded."""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any, ClassVar, cast

import torchvision
from pydantic import BaseModel, Field, field_validator
from torch import nn

from auditor.errors import SpecError
from auditor.models.base import LoadedModel, ModelSource
from auditor.models.weights import load_weights_into
from auditor.paths import ExistingFile
from auditor.plugin import Params as PluginParams
from auditor.suggest import did_you_mean

INIT_LOC = ("model", "init")
WEIGHTS_LOC = ("model", "weights")
# Builder arguments that would fetch pretrained weights from the internet.
_DOWNLOADING = ("weights", "weights_backbone")


@cache
def architectures() -> tuple[str, ...]:
    """Every name ``torchvision.models.get_model`` accepts."""
    return tuple(torchvision.models.list_models())


class TorchvisionModelSource(ModelSource):
    """An architecture from torchvision.models, randomly initialised or given a weights file.

    The model is always built with ``weights=None`` (and ``weights_backbone=None``), so
    nothing is downloaded; pretrained weights must be a local file named by ``weights``.
    Random initialisation is deterministic under the run's seed.
    """

    name: ClassVar[str] = "torchvision"

    class Params(PluginParams):
        arch: str = Field(description="Architecture name, e.g. resnet18 (torchvision.models).")
        num_classes: int | None = Field(
            default=None,
            ge=1,
            le=100_000,
            description="Number of output classes; none keeps the architecture's default.",
        )
        init: dict[str, Any] = Field(
            default_factory=dict,
            description="Other keyword arguments of the architecture's builder.",
        )
        weights: ExistingFile | None = Field(
            default=None,
            description="Local state dict (.safetensors or torch.save); none = random init.",
        )
        trust_pickle: bool = Field(
            default=False,
            description="Allow a weights pickle that runs code when loaded. Only for files "
            "from a trusted source.",
        )

        @field_validator("arch")
        @classmethod
        def _known_arch(cls, value: str) -> str:
            known = architectures()
            if value not in known:
                raise ValueError(
                    f"unknown torchvision architecture '{value}'.{did_you_mean(value, known)}"
                )
            return value

        @field_validator("init")
        @classmethod
        def _no_downloads(cls, value: dict[str, Any]) -> dict[str, Any]:
            named = [k for k in (*_DOWNLOADING, "num_classes") if k in value]
            if named:
                raise ValueError(
                    f"init may not set {', '.join(named)}: use the model's weights (a local "
                    "file) and num_classes keys instead"
                )
            return value

    def load(self, params: BaseModel) -> LoadedModel:
        params = cast(TorchvisionModelSource.Params, params)
        module = build(params.arch, params.num_classes, params.init)
        sha = None
        if params.weights is not None:
            sha = load_weights_into(
                module, params.weights, trust_pickle=params.trust_pickle, loc=WEIGHTS_LOC
            )
        classes = f", num_classes={params.num_classes}" if params.num_classes else ""
        origin = f"weights {params.weights.name}" if params.weights else "random initialisation"
        return LoadedModel(
            module=self.finish(module),
            source=self.name,
            description=f"torchvision {params.arch}{classes} with {origin}",
            weights_path=params.weights,
            weights_sha256=sha,
        )


def build(arch: str, num_classes: int | None, init: dict[str, Any]) -> nn.Module:
    """``get_model(arch, weights=None, ...)`` with every download switched off."""
    accepted = inspect.signature(torchvision.models.get_model_builder(arch)).parameters
    kwargs: dict[str, Any] = dict(init)
    for key in _DOWNLOADING:
        if key in accepted:
            kwargs[key] = None
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    try:
        return torchvision.models.get_model(arch, **kwargs)
    except (TypeError, ValueError) as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k not in _DOWNLOADING)
        raise SpecError.at(
            INIT_LOC, f"torchvision {arch}({shown}) failed: {type(exc).__name__}: {exc}"
        ) from exc
