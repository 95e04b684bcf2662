"""Score-CAM: class activation map weighted by the target's score on masked inputs.

Wang, Wang, Du, Yang, Zhang, Ding, Mardziel, Hu 2020, "Score-CAM: Score-Weighted Visual
Explanations for Convolutional Neural Networks", https://arxiv.org/abs/1910.01279.
Captum has no Score-CAM, so it is written here as the authors' implementation does: a
forward hook keeps the layer's activations ``A_k``; each is upsampled to the input size
and min-max normalized to a mask ``H_k`` in [0, 1] (constant maps get weight 0); the
input times each mask goes through the model, ``batch_size`` masked inputs per pass; the
weight ``s_k`` is the target's softmax probability on ``x * H_k``; the map is
``relu(sum_k s_k * upsampled A_k)``, not normalized, repeated over the input's channels.
Only the target's probability is read; the cost is one forward pass per channel.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import BaseModel, Field

from auditor.errors import SpecIssue
from auditor.explainers.base import Explainer, issues_of
from auditor.explainers.gradcam_plus_plus import (
    check_cam_layer,
    check_maps,
    check_single_output,
    upsample,
)
from auditor.explainers.layers import resolve_layer
from auditor.plugin import Params


class ScoreCamParams(Params):
    layer: str = Field(description="Module path of the layer, e.g. features.3 or layer4.")
    batch_size: int = Field(32, ge=1, le=1_000_000, description="Masked inputs per forward pass.")
    interpolate: Literal["bilinear", "nearest", "bicubic"] = Field(
        "bilinear", description="Upsampling of the activations to the input size."
    )


class ScoreCam(Explainer):
    """Score-CAM at a named layer, upsampled to the input (Wang et al. 2020)."""

    name: ClassVar[str] = "score_cam"
    needs_hooks = True  # a forward hook keeps the layer's activations
    on_device = True
    Params = ScoreCamParams
    modalities = frozenset({"image"})

    @classmethod
    def model_issues(
        cls, params: BaseModel, model: torch.nn.Module, input_shape: tuple[int, ...] | None
    ) -> list[SpecIssue]:
        return issues_of(lambda: check_cam_layer(model, params.layer, input_shape))  # type: ignore[attr-defined]

    @torch.no_grad()
    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        activations = layer_output(self.model, p.layer, inputs)
        check_maps(activations, p.layer)
        n, k = activations.shape[:2]
        size = tuple(inputs.shape[2:])
        maps = upsample(activations.flatten(0, 1).unsqueeze(1), size, p.interpolate)
        maps = maps.view(n, k, *size)
        masks, usable = normalize(maps)
        scores = self._masked_scores(inputs, targets, masks).view(n, k) * usable
        cam = torch.relu((scores[:, :, None, None] * maps).sum(dim=1, keepdim=True))
        return cam.expand_as(inputs).contiguous()

    def _masked_scores(
        self, inputs: torch.Tensor, targets: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """The target's probability on ``x * H_k`` for every sample and channel, flat."""
        n, k = masks.shape[:2]
        sample_of = torch.arange(n, device=inputs.device).repeat_interleave(k)
        flat_masks = masks.flatten(0, 1).unsqueeze(1)  # (n*k, 1, H, W), broadcast over C
        scores = []
        for rows in torch.arange(n * k, device=inputs.device).split(self.params.batch_size):
            masked = inputs[sample_of[rows]] * flat_masks[rows]
            probs = self.model(masked).softmax(dim=1)
            scores.append(probs.gather(1, targets[sample_of[rows]].view(-1, 1)).squeeze(1))
        return torch.cat(scores)


def normalize(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Min-max normalized maps ``(N, K, H, W)`` and which of them are not constant."""
    low = maps.amin(dim=(2, 3), keepdim=True)
    high = maps.amax(dim=(2, 3), keepdim=True)
    span = high - low
    usable = (span > 0)[:, :, 0, 0]
    masks = (maps - low) / torch.where(span > 0, span, torch.ones_like(span))
    return masks, usable.to(maps.dtype)


def layer_output(model: torch.nn.Module, path: str, inputs: torch.Tensor) -> torch.Tensor:
    """The output of the layer at ``path``, kept by a forward hook removed before returning."""
    kept: list[object] = []
    layer = resolve_layer(model, path)
    handle = layer.register_forward_hook(lambda _m, _i, output: kept.append(output))
    try:
        model(inputs)
        check_single_output(kept, path)
    finally:
        handle.remove()
    # On the inputs' device: the model may run elsewhere (``auditor.device.OnDevice``).
    return kept[0].detach().to(inputs.device)  # type: ignore[union-attr]
