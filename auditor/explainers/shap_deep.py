"""SHAP's DeepExplainer: DeepLIFT multipliers averaged over background samples (DeepSHAP).

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874; DeepLIFT: Shrikumar et al. 2017,
https://arxiv.org/abs/1704.02685. Engine: ``shap.DeepExplainer`` on the target output
of a fresh copy of the model for each call (shap leaves its hooks and saved tensors on
the model when it raises), by default the torch.fx rewrite of
``auditor.explainers.fx_rewrite``. The completeness gap (sum of attributions minus
``f(x) - mean_b f(b)``) is kept per sample.
"""

from __future__ import annotations

import copy
import warnings
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from auditor.explainers.base import Explainer
from auditor.explainers.deeplift import REWRITE_HELP
from auditor.explainers.fx_rewrite import deeplift_ready
from auditor.explainers.shap_support import (
    TargetOutput,
    background_mean_outputs,
    background_sample,
    by_target,
    completeness_gap,
)
from auditor.plugin import Params


class ShapDeepParams(Params):
    n_background: int = Field(
        32, ge=1, le=10_000, description="Background samples from the slice (seeded subset)."
    )
    rewrite: bool = Field(True, description=REWRITE_HELP)


class ShapDeep(Explainer):
    """shap's DeepExplainer on the target output (Lundberg and Lee 2017)."""

    name: ClassVar[str] = "shap_deep"
    uses_background = True
    differentiable = True
    #: Text would need the rewritten graph to start at the embedding output: not yet.
    modalities = frozenset({"image", "tabular"})
    needs_hooks = True  # torch.fx rewrite, then shap's module hooks
    stats = ("convergence_delta",)
    Params = ShapDeepParams
    _engine: nn.Module | None = None

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        import shap

        p = self.params
        if self._engine is None:
            self._engine = deeplift_ready(self.model, self.name, rewrite=p.rewrite)
        background = background_sample(self.context, p.n_background, self.name)
        out = torch.empty_like(inputs)
        for target, indices in by_target(targets):
            model = TargetOutput(copy.deepcopy(self._engine), target)
            with warnings.catch_warnings():
                if p.rewrite:  # the rewrite admits only linear modules shap does not know
                    warnings.filterwarnings("ignore", message="unrecognized nn.Module")
                explainer = shap.DeepExplainer(model, background)
                values = explainer.shap_values(inputs[indices], check_additivity=False)
            out[indices] = torch.as_tensor(np.asarray(values)[..., 0], dtype=torch.float32)
        reference = background_mean_outputs(self.model, background, targets)
        self.record(convergence_delta=completeness_gap(self.model, inputs, targets, out, reference))
        return out
