"""A description of a loaded model for results and report: layers, their output shapes, sizes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from auditor.errors import RunError
from auditor.models.base import LoadedModel


@dataclass
class LayerInfo:
    """One submodule: its dotted name (what ``gradcam``'s ``layer`` param takes), type, size."""

    name: str
    type: str
    #: Shape of its output for a batch of one (first tensor of a tuple output), when known.
    output_shape: list[int] | None
    #: Parameters owned by this module itself, not by its children.
    params: int


@dataclass
class ModelInfo:
    """What results.json and the report say about the model."""

    class_name: str
    total_params: int
    layers: list[LayerInfo]
    weights_sha256: str | None
    #: Shape of the model's output for a batch of one.
    output_shape: list[int] | None = None
    #: What could not be described (output shapes of TorchScript submodules).
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_model(loaded: LoadedModel, sample: torch.Tensor) -> ModelInfo:
    """Describe ``loaded.module`` with output shapes from one no-grad forward pass.

    ``sample`` is a batch ``(1, *input_shape)`` (only its first row is used). Forward hooks
    go on every submodule and are removed before returning, also when the forward fails
    (which is a ``RunError``: the model does not accept the data's inputs).
    """
    module = loaded.module
    shapes, output, notes = _trace_shapes(module, sample[:1])
    layers = [
        LayerInfo(
            name=name,
            type=_type_name(sub),
            output_shape=shapes.get(name),
            params=sum(p.numel() for p in sub.parameters(recurse=False)),
        )
        for name, sub in module.named_modules()
        if name
    ]
    return ModelInfo(
        class_name=_type_name(module),
        total_params=sum(p.numel() for p in module.parameters()),
        layers=layers,
        weights_sha256=loaded.weights_sha256,
        output_shape=_shape(output),
        notes=notes,
    )


def _trace_shapes(
    module: nn.Module, sample: torch.Tensor
) -> tuple[dict[str, list[int] | None], Any, list[str]]:
    shapes: dict[str, list[int] | None] = {}
    refused: list[str] = []
    handles = []

    def record(name: str) -> Callable[[nn.Module, Any, Any], None]:
        def hook(_module: nn.Module, _inputs: Any, out: Any) -> None:
            shapes.setdefault(name, _shape(out))  # a module called twice keeps its first call

        return hook

    try:
        for name, sub in module.named_modules():
            if not name:
                continue
            if isinstance(sub, torch.jit.ScriptModule):
                # Compiled code calls its submodules without Python: hooks would never fire
                # (traced modules) or are refused (scripted ones).
                refused.append(name)
                continue
            handles.append(sub.register_forward_hook(record(name)))
        with torch.no_grad():
            try:
                output = module(sample)
            except Exception as exc:
                raise RunError(
                    f"the model's forward pass failed on a sample of shape "
                    f"{list(sample.shape)}: {type(exc).__name__}: {exc}"
                ) from exc
    finally:
        for handle in handles:
            handle.remove()
    notes = [f"no output shapes for {len(refused)} TorchScript modules"] if refused else []
    return shapes, output, notes


def _shape(out: Any) -> list[int] | None:
    if isinstance(out, torch.Tensor):
        return list(out.shape)
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        return list(out[0].shape)
    return None


def _type_name(module: nn.Module) -> str:
    if isinstance(module, torch.jit.ScriptModule):
        return getattr(module, "original_name", type(module).__name__)
    return type(module).__name__
