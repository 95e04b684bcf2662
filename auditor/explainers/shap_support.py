"""Pieces shared by the SHAP-family explainers: background, target-only models, seeding.

Every SHAP value is relative to a background distribution (the slice's samples in
``ExplainContext.background``); every explainer here explains only the target output,
so its cost does not grow with the number of classes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from auditor.errors import RunError
from auditor.explainers.base import ExplainContext


def background_sample(context: ExplainContext, n: int, explainer: str) -> torch.Tensor:
    """At most ``n`` background samples, a seeded subset when the slice gave more.

    The subset depends only on the run's seed, never on the batch, so every batch (and
    every engine given the same ``n``) is explained against the same background.
    """
    background = context.background
    if background is None or len(background) == 0:
        raise RunError(
            f"{explainer} needs background samples from the data slice, but none were given"
        )
    background = background.detach().to("cpu", torch.float32)
    if len(background) <= n:
        return background.clone()
    generator = torch.Generator().manual_seed(context.seed)
    keep = torch.randperm(len(background), generator=generator)[:n].sort().values
    return background[keep].clone()


class TargetOutput(nn.Module):
    """``model`` restricted to one output column: ``(N, ...) -> (N, 1)``."""

    def __init__(self, model: nn.Module, target: int) -> None:
        super().__init__()
        self.model = model
        self.target = int(target)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.target : self.target + 1]


def by_target(targets: torch.Tensor) -> Iterator[tuple[int, torch.Tensor]]:
    """``(class, indices of the samples explained for it)`` for each distinct target."""
    for target in torch.unique(targets).tolist():
        yield int(target), torch.nonzero(targets == target).flatten()


@contextmanager
def numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (shap and Captum draw from it) and restore it after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@torch.no_grad()
def target_outputs(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``model(inputs)[i, targets[i]]`` for each sample, shape ``(N,)``."""
    return model(inputs)[torch.arange(len(inputs)), targets]


@torch.no_grad()
def completeness_gap(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    attributions: torch.Tensor,
    reference: torch.Tensor | float,
) -> torch.Tensor:
    """``sum(attributions) - (f_t(x) - reference_t)`` per sample.

    ``reference`` is the target output of the reference per sample ``(N,)`` (e.g. the
    mean over the background) or one number for all.
    """
    return attributions.flatten(1).sum(1) - (target_outputs(model, inputs, targets) - reference)


@torch.no_grad()
def background_mean_outputs(
    model: nn.Module, background: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """``mean_b f_t(b)`` for each sample's target, shape ``(N,)``."""
    return model(background).mean(0)[targets]
