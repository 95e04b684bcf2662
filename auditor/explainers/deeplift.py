"""DeepLIFT: contributions of input differences from a baseline, by the rescale rule.

Shrikumar, Greenside, Kundaje 2017, "Learning Important Features Through Propagating
Activation Differences", https://arxiv.org/abs/1704.02685. Engine:
``captum.attr.DeepLift``, run on a torch.fx rewrite of a copy of the model
(``auditor.explainers.fx_rewrite``) so that reused or in-place activations (ResNet,
MobileNet) get their own modules. Attributions sum to ``f(x) - f(baseline)``; the gap
(Captum's convergence delta) is kept per sample.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import torch
from pydantic import Field
from torch import nn

from auditor.explainers.base import Explainer
from auditor.explainers.baselines import BaselineKind, make_baseline
from auditor.explainers.fx_rewrite import deeplift_ready
from auditor.plugin import Params

REWRITE_HELP = (
    "Trace a copy of the model with torch.fx and give every activation its own "
    "non-inplace module (needed for ResNet, MobileNet and models with F.relu); "
    "false runs the engine on a plain copy."
)


class DeepLiftParams(Params):
    baseline: BaselineKind = Field("zeros", description="zeros | mean | blur | uniform")
    rewrite: bool = Field(True, description=REWRITE_HELP)
    eps: float = Field(
        1e-10,
        gt=0,
        le=1e-3,
        description="Input differences below this use the gradient, not the rescale ratio.",
    )


class DeepLift(Explainer):
    """DeepLIFT rescale rule from a baseline (Shrikumar et al. 2017)."""

    name: ClassVar[str] = "deeplift"
    differentiable = True
    #: Text would need the rewritten graph to start at the embedding output: not yet.
    modalities = frozenset({"image", "tabular"})
    needs_hooks = True  # torch.fx rewrite, then Captum's module hooks
    stats = ("convergence_delta",)
    Params = DeepLiftParams
    _engine: nn.Module | None = None

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import DeepLift as CaptumDeepLift

        p = self.params
        if self._engine is None:
            self._engine = deeplift_ready(self.model, self.name, rewrite=p.rewrite)
        baseline = make_baseline(
            p.baseline, inputs, self.context.background, seed=self.context.seed
        )
        inputs.requires_grad_()  # our own clone (see Explainer.explain)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            attributions, delta = CaptumDeepLift(self._engine, eps=p.eps).attribute(
                inputs, baselines=baseline, target=targets, return_convergence_delta=True
            )
        self.record(convergence_delta=delta)
        return attributions
