"""Grad-CAM: class activation map from a layer's gradient-weighted activations.

Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization", https://arxiv.org/abs/1610.02391. The computation of
``captum.attr.LayerGradCam`` (the tests check them equal) on one backward pass of the
summed target logits to the layer (Captum seeds a gradient per output row); the map is
upsampled to the input size and repeated over the input's channels so that it has the
input's shape.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, Field

from auditor.errors import SpecIssue
from auditor.explainers.base import Explainer, issues_of
from auditor.explainers.gradcam_plus_plus import check_cam_layer, layer_gradients
from auditor.plugin import Params


class GradCamParams(Params):
    layer: str = Field(description="Module path of the layer, e.g. features.3 or layer4.")
    relu: bool = Field(True, description="Keep only positive evidence (the paper's ReLU).")
    interpolate: Literal["bilinear", "nearest", "bicubic"] = Field(
        "bilinear", description="Upsampling to the input size."
    )


class GradCam(Explainer):
    """Grad-CAM at a named layer, upsampled to the input (Selvaraju et al. 2017)."""

    name: ClassVar[str] = "gradcam"
    needs_hooks = True  # a forward hook keeps the layer's activations
    on_device = True
    Params = GradCamParams
    modalities = frozenset({"image"})

    @classmethod
    def model_issues(
        cls, params: BaseModel, model: torch.nn.Module, input_shape: tuple[int, ...] | None
    ) -> list[SpecIssue]:
        return issues_of(lambda: check_cam_layer(model, params.layer, input_shape))  # type: ignore[attr-defined]

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import LayerAttribution

        p = self.params
        activations, grads = layer_gradients(self.model, p.layer, inputs, targets)
        spatial = tuple(range(2, grads.dim()))
        weights = grads.mean(dim=spatial, keepdim=True) if spatial else grads
        cam = (weights * activations).sum(dim=1, keepdim=True)
        if p.relu:
            cam = F.relu(cam)
        cam = LayerAttribution.interpolate(
            cam, tuple(inputs.shape[2:]), interpolate_mode=p.interpolate
        )
        return cam.mean(dim=1, keepdim=True).expand_as(inputs).contiguous()
