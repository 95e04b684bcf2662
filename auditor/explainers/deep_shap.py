"""DeepSHAP: DeepLIFT averaged over background samples, approximating SHAP values.

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874 (DeepLIFT: Shrikumar et al. 2017,
https://arxiv.org/abs/1704.02685). Engine: ``captum.attr.DeepLiftShap`` on a torch.fx
rewrite of a copy of the model (``auditor.explainers.fx_rewrite``). Attributions sum to
``f(x) - mean_b f(b)`` over the background; the gap is kept per sample.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from auditor.explainers.base import Explainer
from auditor.explainers.deeplift import REWRITE_HELP
from auditor.explainers.fx_rewrite import deeplift_ready
from auditor.explainers.shap_support import background_sample
from auditor.plugin import Params


class DeepShapParams(Params):
    n_background: int = Field(
        32, ge=1, le=10_000, description="Background samples from the slice (seeded subset)."
    )
    rewrite: bool = Field(True, description=REWRITE_HELP)
    internal_batch_size: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="(Input, background) pairs per forward pass (default: the whole batch).",
    )


class DeepShap(Explainer):
    """DeepLIFT averaged over background samples (Lundberg and Lee 2017)."""

    name: ClassVar[str] = "deep_shap"
    uses_background = True
    differentiable = True
    #: Text would need the rewritten graph to start at the embedding output: not yet.
    modalities = frozenset({"image", "tabular"})
    needs_hooks = True  # torch.fx rewrite, then Captum's module hooks
    stats = ("convergence_delta",)
    Params = DeepShapParams
    _engine: nn.Module | None = None

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import DeepLiftShap as CaptumDeepLiftShap

        p = self.params
        if self._engine is None:
            self._engine = deeplift_ready(self.model, self.name, rewrite=p.rewrite)
        background = background_sample(self.context, p.n_background, self.name)
        per_pass = len(inputs)
        if p.internal_batch_size is not None:
            per_pass = max(1, p.internal_batch_size // len(background))
        parts, gaps = [], []
        method = CaptumDeepLiftShap(self._engine)
        inputs.requires_grad_()  # our own clone (see Explainer.explain)
        for start in range(0, len(inputs), per_pass):
            chunk = slice(start, start + per_pass)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
                attributions, delta = method.attribute(
                    inputs[chunk],
                    baselines=background,
                    target=targets[chunk],
                    return_convergence_delta=True,
                )
            parts.append(attributions)
            # Captum's delta is per (input, background) pair, input-major; its mean over
            # the background is sum(attributions) - (f(x) - mean_b f(b)).
            gaps.append(delta.view(len(attributions), len(background)).mean(1))
        self.record(convergence_delta=torch.cat(gaps))
        return torch.cat(parts)
