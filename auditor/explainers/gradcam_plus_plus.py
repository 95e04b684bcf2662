"""Grad-CAM++: class activation map with pixel-wise weighted positive gradients.

Chattopadhyay, Sarkar, Howlader, Balasubramanian 2018, "Grad-CAM++: Generalized
Gradient-based Visual Explanations for Deep Convolutional Networks",
https://arxiv.org/abs/1710.11063. Captum has no Grad-CAM++, so it is written here on a
forward hook at the layer, with the closed form of pytorch-grad-cam (the paper's
exponential-score derivation, whose second and third derivatives are powers of the first):

    alpha_kij = g_kij^2 / (2 g_kij^2 + sum_ab A_kab * g_kij^3)   (0 where that is 0/0)
    w_k = sum_ij alpha_kij * relu(g_kij),   cam = relu(sum_k w_k A_k)

with ``A`` the layer's activations and ``g`` the gradient of the target's logit. The map
is upsampled to the input size and repeated over the input's channels, like ``gradcam``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field

from auditor.errors import SpecError, SpecIssue
from auditor.explainers.base import Explainer, issues_of
from auditor.explainers.layers import resolve_layer
from auditor.plugin import Params


class GradCamPlusPlusParams(Params):
    layer: str = Field(description="Module path of the layer, e.g. features.3 or layer4.")
    interpolate: Literal["bilinear", "nearest", "bicubic"] = Field(
        "bilinear", description="Upsampling to the input size."
    )


class GradCamPlusPlus(Explainer):
    """Grad-CAM++ at a named layer, upsampled to the input (Chattopadhyay et al. 2018)."""

    name: ClassVar[str] = "gradcam_plus_plus"
    needs_hooks = True  # a forward hook keeps the layer's activations
    on_device = True
    Params = GradCamPlusPlusParams
    modalities = frozenset({"image"})

    @classmethod
    def model_issues(
        cls, params: BaseModel, model: torch.nn.Module, input_shape: tuple[int, ...] | None
    ) -> list[SpecIssue]:
        return issues_of(lambda: check_cam_layer(model, params.layer, input_shape))  # type: ignore[attr-defined]

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        activations, grads = layer_gradients(self.model, self.params.layer, inputs, targets)
        check_maps(activations, self.params.layer)
        weights = gradcam_pp_weights(activations, grads)
        cam = F.relu((weights[:, :, None, None] * activations).sum(dim=1, keepdim=True))
        cam = upsample(cam, tuple(inputs.shape[2:]), self.params.interpolate)
        # Bicubic upsampling overshoots below zero near edges; the map stays non-negative.
        return cam.clamp(min=0).expand_as(inputs).contiguous()


def gradcam_pp_weights(activations: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Channel weights ``(N, K)`` from activations and gradients ``(N, K, H, W)``."""
    grads_2 = grads.pow(2)
    grads_3 = grads_2 * grads
    sum_activations = activations.sum(dim=(2, 3), keepdim=True)
    denominator = 2 * grads_2 + sum_activations * grads_3
    # It is 0 where the gradient is 0 (alpha is 0 there by definition) or, with negative
    # activations, where S*g = -2 (singular; taken as 0). An additive epsilon, as
    # pytorch-grad-cam uses, would bias alpha by about eps / g^2: large for small gradients.
    safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    alpha = torch.where(denominator != 0, grads_2 / safe, torch.zeros_like(grads_2))
    return (alpha * F.relu(grads)).sum(dim=(2, 3))


def layer_gradients(
    model: torch.nn.Module, path: str, inputs: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The output of the layer at ``path`` and each sample's target-logit gradient there."""
    layer = resolve_layer(model, path)
    kept: list[torch.Tensor] = []

    def keep_output(_module: torch.nn.Module, _inputs: object, output: object) -> None:
        kept.append(output)  # type: ignore[arg-type]

    handle = layer.register_forward_hook(keep_output)
    try:
        with torch.enable_grad():
            # The model's weights may not require grad; the input must, for a graph to exist.
            x = inputs.detach().requires_grad_(True)
            logits = model(x)
            score = logits.gather(1, targets.view(-1, 1)).sum()  # samples are independent
            check_single_output(kept, path)
            (grads,) = torch.autograd.grad(score, kept[0])
    finally:
        handle.remove()
    # On the inputs' device: the model may run elsewhere (``auditor.device.OnDevice``).
    return kept[0].detach().to(inputs.device), grads.detach().to(inputs.device)


def check_single_output(kept: list[object], path: str) -> None:
    """The hooked layer must have run once per forward pass and returned one tensor."""
    if len(kept) != 1 or not isinstance(kept[0], torch.Tensor):
        got = f"ran {len(kept)} times" if len(kept) != 1 else f"returned {type(kept[0]).__name__}"
        raise RuntimeError(
            f"layer '{path}' {got} in one forward pass; a class activation map needs a "
            "layer that is called once and returns one tensor"
        )


def check_cam_layer(model: torch.nn.Module, path: str, input_shape: tuple[int, ...] | None) -> None:
    """A ``SpecError`` at ``params.layer`` unless ``path`` names a layer that, in a forward
    pass of one sample of ``input_shape``, runs once and outputs feature maps (N, C, H, W).

    Planning calls it before any explainer runs, with the rules the CAMs apply to every
    batch (``check_single_output``, ``check_maps``). With the shape unknown, or a model that
    cannot run a zero sample (the predict stage reports that), only the name is checked.
    """
    layer = resolve_layer(model, path)
    if input_shape is None:
        return
    kept: list[object] = []
    handle = layer.register_forward_hook(lambda _m, _i, output: kept.append(output))
    try:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else None
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    except Exception:
        return
    finally:
        handle.remove()
    try:
        check_single_output(kept, path)
    except RuntimeError as exc:
        raise SpecError.at(("params", "layer"), str(exc)) from None
    check_maps(kept[0], path)  # type: ignore[arg-type]


def check_maps(activations: torch.Tensor, layer: str) -> None:
    """A CAM needs feature maps ``(N, K, H, W)``; anything else is a spec error."""
    if activations.dim() != 4:
        raise SpecError.at(
            ("params", "layer"),
            f"layer '{layer}' outputs shape {tuple(activations.shape)}; a class activation "
            "map needs a convolutional layer with output (N, C, H, W)",
        )


def upsample(maps: torch.Tensor, size: tuple[int, ...], mode: str) -> torch.Tensor:
    """``(N, 1, h, w)`` maps resized to ``size``."""
    if tuple(maps.shape[2:]) == size:
        return maps
    align = False if mode in ("bilinear", "bicubic") else None
    return F.interpolate(maps, size=size, mode=mode, align_corners=align)
