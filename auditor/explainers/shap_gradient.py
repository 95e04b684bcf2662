"""SHAP's GradientExplainer: expected gradients with shap as the engine.

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874; expected gradients as in Erion et al. 2021,
https://arxiv.org/abs/1906.10670. Engine: ``shap.GradientExplainer`` on the model
restricted to the target output (one explainer per target class in the batch), so the
cost does not grow with the number of classes. Each sample is explained with the same
seeded draws, independent of the batch it came in.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import nn

from auditor.explainers.base import ExplainContext, Explainer
from auditor.explainers.passes import rows_per_pass
from auditor.explainers.shap_support import (
    TargetOutput,
    background_mean_outputs,
    background_sample,
    by_target,
    completeness_gap,
    numpy_seed,
)
from auditor.plugin import Params


class ShapGradientParams(Params):
    nsamples: int = Field(
        200, ge=1, le=100_000, description="Random (background, path point) draws per sample."
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=100_000,
        description="Draws per forward/backward pass (default: all of a sample's draws, up to "
        "2**22 input elements; shap's own default is 50). Results do not depend on it.",
    )
    local_smoothing: float = Field(
        0.0, ge=0.0, le=100.0, description="Std of Gaussian noise added to the input."
    )
    n_background: int = Field(
        64, ge=1, le=100_000, description="Background samples from the slice (seeded subset)."
    )


class ShapGradient(Explainer):
    """shap's GradientExplainer on the target output (Lundberg and Lee 2017)."""

    name: ClassVar[str] = "shap_gradient"
    uses_background = True
    differentiable = True
    stats = ("convergence_delta",)
    Params = ShapGradientParams

    def __init__(self, model: nn.Module, params: BaseModel, context: ExplainContext) -> None:
        super().__init__(model, params, context)
        #: shap.GradientExplainer per class, with the model and background it was made for
        self._engines: dict[int, tuple[Any, Any, Any]] = {}

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        import shap

        p = self.params
        background = background_sample(self.context, p.n_background, self.name)
        out = torch.empty_like(inputs)
        batch_size = p.batch_size or min(p.nsamples, rows_per_pass(self.model, inputs))
        for target, indices in by_target(targets):
            kept = self._engines.get(target)
            if kept is not None and kept[0] is self.model and torch.equal(kept[1], background):
                explainer = kept[2]
            else:  # one per class, kept for the later batches of the same model and background
                # (a text is explained in its own embedding space, with its own background)
                explainer = shap.GradientExplainer(
                    TargetOutput(self.model, target),
                    background,
                    batch_size=batch_size,
                    local_smoothing=p.local_smoothing,
                )
                self._engines[target] = (self.model, background, explainer)
            for i in indices.tolist():
                if p.local_smoothing > 0:
                    torch.manual_seed(self.context.seed)  # the noise
                with numpy_seed(self.context.seed):
                    values = explainer.shap_values(
                        inputs[i : i + 1], nsamples=p.nsamples, rseed=self.context.seed
                    )
                out[i] = torch.as_tensor(np.asarray(values)[0, ..., 0])
        reference = background_mean_outputs(self.model, background, targets)
        self.record(convergence_delta=completeness_gap(self.model, inputs, targets, out, reference))
        return out
