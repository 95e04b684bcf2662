"""PartitionSHAP: Owen values over a hierarchy of image regions, with shap as the engine.

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874; the partition explainer computes Owen values
(Owen 1977) over shap's axis-aligned image hierarchy. Engine: ``shap.PartitionExplainer``
with ``shap.maskers.Image`` whose hidden pixels take a reference value (a Gaussian blur
of the image, the slice mean, or zeros; computed here, so OpenCV is not needed), on the
target output only. Attributions sum to ``f(x) - f(reference)``; the gap is kept.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from auditor.explainers.base import Explainer
from auditor.explainers.baselines import make_baseline
from auditor.explainers.shap_support import completeness_gap, target_outputs
from auditor.plugin import Params


class ShapPartitionParams(Params):
    mask: Literal["blur", "mean", "zeros"] = Field(
        "blur", description="Value of hidden pixels: blurred image, slice mean, or zeros."
    )
    blur_sigma: float = Field(
        4.0, gt=0.0, le=1000.0, description="Gaussian blur sigma in pixels (mask 'blur')."
    )
    max_evals: int = Field(500, ge=3, le=1_000_000, description="Model evaluations per sample.")
    batch_size: int = Field(64, ge=1, le=100_000, description="Masked images per forward pass.")


class ImageTargetFunction:
    """A numpy function of ``(n, H, W, C)`` images: the model's ``target`` output."""

    def __init__(self, model: nn.Module, target: int) -> None:
        self.model, self.target = model, target

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
        return self.model(x.contiguous())[:, self.target].numpy()


class ShapPartition(Explainer):
    """shap's PartitionExplainer (Owen values) over image regions, on the target output."""

    name: ClassVar[str] = "shap_partition"
    stats = ("convergence_delta",)
    Params = ShapPartitionParams
    modalities = frozenset({"image"})

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        import shap

        p = self.params
        references = make_baseline(
            p.mask,
            inputs,
            self.context.background,
            blur_sigma=p.blur_sigma,
        )
        out = torch.empty_like(inputs)
        for i in range(len(inputs)):
            # shap's image masker and hierarchy work on channel-last images
            reference = references[i].permute(1, 2, 0).numpy()
            masker = shap.maskers.Image(reference.copy())
            explainer = shap.PartitionExplainer(
                ImageTargetFunction(self.model, int(targets[i])), masker
            )
            image = inputs[i].permute(1, 2, 0).numpy()[None]
            result = explainer(image, max_evals=p.max_evals, batch_size=p.batch_size, silent=True)
            out[i] = torch.as_tensor(np.asarray(result.values)[0]).permute(2, 0, 1)
        reference_outputs = target_outputs(self.model, references, targets)
        self.record(
            convergence_delta=completeness_gap(self.model, inputs, targets, out, reference_outputs)
        )
        return out
