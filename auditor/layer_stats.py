"""How the model's layers behave on the audited slice (issue 18, "Layers on the audited data").

One forward pass over the slice, in batches, with a forward hook on every leaf layer that
outputs a tensor: mean and spread of its outputs, the fraction of its units that never
activate (output <= 0 on every sample; a unit is a channel of a convolution's maps, a
feature of a linear output) and the norm of its weight. Hooks are removed in ``finally``.

For the report, ``layers.npz`` in the run folder holds, for the gallery samples, the most
active channels of the feature-map layers (the CAM explainers' ``layer`` or
``report.model.activations``) and the first convolution's filters. A TorchScript model
takes no hooks: its statistics are "not available".
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from auditor.data.base import AuditDataset
from auditor.data.slicing import iter_batches
from auditor.errors import SpecError, SpecIssue
from auditor.explainers.passes import contains_torchscript
from auditor.run_folder import RunFolder
from auditor.suggest import did_you_mean, join_names

#: Explainers whose ``layer`` param names a feature-map layer shown by default.
CAM_EXPLAINERS = ("gradcam", "gradcam_plus_plus", "score_cam")
TOP_CHANNELS = 8  # feature maps shown per sample and layer
MAX_FILTERS = 64  # first-convolution filters stored
#: Leaf modules that only reshape or pass their input on: no row of their own.
PASS_THROUGH = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout1d)
#: Layers whose "never > 0" units are dead rectifiers (the ``dead_units`` warning).
RECTIFIERS = (nn.ReLU, nn.ReLU6)
NOT_AVAILABLE = "not available: the model is or holds TorchScript, which takes no forward hooks"


@dataclass
class _Accumulator:
    """Streaming sums of one layer's outputs over the slice."""

    type: str
    rectifier: bool
    weight_norm: float | None
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    active: torch.Tensor | None = None  # (units,) bool: > 0 somewhere on the slice
    mixed: bool = False  # called with outputs of different widths (a reused module)

    def add(self, output: torch.Tensor) -> None:
        x = output.detach().float()
        self.count += x.numel()
        # per batch in float32, over the slice in Python floats (float64)
        self.total += float(x.sum())
        self.squares += float(torch.linalg.vector_norm(x) ** 2)
        # a unit: dim 1 (a channel of conv maps, a feature of a linear output)
        others = (0, *range(2, x.dim())) if x.dim() >= 2 else (0,)
        active = x.amax(dim=others).reshape(-1) > 0
        if self.active is None:
            self.active = active
        elif self.active.shape == active.shape:
            self.active |= active
        else:
            self.mixed = True

    def row(self, name: str) -> dict[str, Any]:
        mean = self.total / self.count if self.count else None
        var = self.squares / self.count - mean**2 if mean is not None else None
        std = math.sqrt(max(var, 0.0)) if var is not None else None
        units = int(self.active.numel()) if self.active is not None and not self.mixed else None
        dead = float((~self.active).sum()) / units if units and self.active is not None else None
        return {
            "name": name,
            "type": self.type,
            "mean": mean,
            "std": std,
            "dead_fraction": dead,
            "units": units,
            "weight_norm": self.weight_norm,
            "rectifier": self.rectifier,
        }


def _user_model(model: nn.Module) -> nn.Module:
    """The user's model inside the run's precision wrapper (layer names are its own)."""
    return getattr(model, "wrapped_model", model)


def leaf_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Named leaf modules with an output worth a row (reshapes and dropout left out)."""
    return [
        (name, module)
        for name, module in _user_model(model).named_modules()
        if name
        and not any(True for _ in module.children())
        and not isinstance(module, PASS_THROUGH)
    ]


def _weight_norm(module: nn.Module) -> float | None:
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return None
    return float(weight.detach().float().norm())


def layer_stats(
    model: nn.Module, dataset: AuditDataset, indices: np.ndarray, batch_size: int
) -> list[dict[str, Any]] | None:
    """One row per leaf layer over the slice, streamed in batches; None for TorchScript."""
    if contains_torchscript(model):
        return None
    layers = leaf_layers(model)
    sums = {
        name: _Accumulator(type(m).__name__, isinstance(m, RECTIFIERS), _weight_norm(m))
        for name, m in layers
    }

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if isinstance(output, torch.Tensor) and output.is_floating_point() and output.dim():
                sums[name].add(output)

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in layers]
    try:
        with torch.inference_mode():
            for chunk in iter_batches(indices, batch_size):
                model(dataset.get(chunk))
    finally:
        for handle in handles:
            handle.remove()
    return [acc.row(name) for name, acc in sums.items() if acc.count]


def map_layers(spec_layers: list[str] | None, explainers: list[Any]) -> list[str]:
    """The layers whose feature maps the report shows: ``report.model.activations``, else
    the ``layer`` of each CAM explainer (spec order, once each)."""
    if spec_layers is not None:
        return list(dict.fromkeys(spec_layers))
    found = [
        str(entry.params["layer"])
        for entry in explainers
        if entry.type in CAM_EXPLAINERS and isinstance(entry.params.get("layer"), str)
    ]
    return list(dict.fromkeys(found))


def activation_issues(names: list[str] | None, model: nn.Module) -> list[SpecIssue]:
    """Unknown layer names in ``report.model.activations``, each at its list position."""
    if not names:
        return []
    modules = [n for n, _ in _user_model(model).named_modules() if n]
    known = set(modules)
    return [
        SpecIssue(
            f"unknown layer '{name}'.{did_you_mean(name, modules)} Layers: "
            f"{join_names(modules, 40)}",
            ("report", "model", "activations", i),
        )
        for i, name in enumerate(names)
        if name not in known
    ]


def feature_maps(
    model: nn.Module, inputs: torch.Tensor, names: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each named layer with (N, C, H, W) outputs: the ``TOP_CHANNELS`` channels of
    highest mean activation per sample, (N, k, H, W) float16 maps and (N, k) channel ids."""
    if contains_torchscript(model) or not len(inputs) or not names:
        return {}
    modules = dict(_user_model(model).named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise SpecError.at(
            ("report", "model", "activations"),
            f"unknown layer '{missing[0]}'.{did_you_mean(missing[0], list(modules))}",
        )
    outputs: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if name not in outputs and isinstance(output, torch.Tensor) and output.dim() == 4:
                outputs[name] = output.detach().float().clone()

        return hook

    handles = [modules[n].register_forward_hook(hook_for(n)) for n in names]
    try:
        with torch.inference_mode():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    found = {}
    for name in names:
        if name not in outputs:
            continue
        maps = outputs[name]
        k = min(TOP_CHANNELS, maps.shape[1])
        order = maps.mean(dim=(2, 3)).topk(k, dim=1).indices  # (N, k)
        picked = torch.gather(maps, 1, order[:, :, None, None].expand(-1, -1, *maps.shape[2:]))
        found[name] = (
            picked.cpu().numpy().astype(np.float16),
            order.cpu().numpy().astype(np.int64),
        )
    return found


def first_conv(model: nn.Module) -> tuple[str, np.ndarray] | None:
    """The first 2-d convolution's name and weights (out, in, kh, kw), at most ``MAX_FILTERS``."""
    for name, module in _user_model(model).named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module.weight.detach().float()[:MAX_FILTERS].cpu().numpy()
    return None


def save_layers(
    folder: RunFolder,
    model: nn.Module,
    gallery_inputs: np.ndarray,
    names: list[str],
    spatial: bool,
) -> None:
    """``layers.npz``: ``layers`` (names), ``maps_i``/``channels_i`` per layer with feature
    maps, and ``filters`` with ``filters_layer`` (image models with a convolution); feature
    maps only for ``spatial`` inputs (images)."""
    arrays: dict[str, np.ndarray] = {}
    if spatial and not contains_torchscript(model):
        maps = feature_maps(model, torch.from_numpy(gallery_inputs), names)
        arrays["layers"] = np.asarray(list(maps), dtype=str)
        for i, (m, channels) in enumerate(maps.values()):
            arrays[f"maps_{i}"], arrays[f"channels_{i}"] = m, channels
        conv = first_conv(model)
        if conv is not None:
            arrays["filters_layer"] = np.asarray(conv[0], dtype=str)
            arrays["filters"] = conv[1]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    folder.write_bytes("layers.npz", buffer.getvalue())
