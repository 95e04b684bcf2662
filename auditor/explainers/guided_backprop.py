"""Guided Backpropagation: gradients through ReLUs that pass only positive signal.

Springenberg, Dosovitskiy, Brox, Riedmiller 2015, "Striving for Simplicity: The All
Convolutional Net", https://arxiv.org/abs/1412.6806. Engine: ``captum.attr.GuidedBackprop``.

Captum overrides the backward pass of every ``nn.ReLU`` module with module hooks for the
duration of one call; it removes them in its own ``finally``, and this plugin removes any
hook the call left behind as a second line of defence. ReLUs applied functionally
(``F.relu``, ``torch.relu``) are not hooked and behave as in the plain gradient.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import torch
from torch import nn

from auditor.explainers.base import Explainer
from auditor.plugin import Params


class GuidedBackpropParams(Params):
    """Guided Backpropagation has no parameters."""


class GuidedBackprop(Explainer):
    """Gradient with ReLU backward passes clamped to positive values (Springenberg 2015)."""

    name: ClassVar[str] = "guided_backprop"
    differentiable = True
    needs_hooks = True  # Captum hooks every nn.ReLU's backward pass
    on_device = True
    Params = GuidedBackpropParams

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        from captum.attr import GuidedBackprop as CaptumGuidedBackprop

        inputs.requires_grad_(True)  # our own copy; saves Captum's warning that it did so
        before = _hook_ids(self.model)
        try:
            with warnings.catch_warnings():
                # Captum warns on every call that it sets (and removes) ReLU hooks.
                warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
                return CaptumGuidedBackprop(self.model).attribute(inputs, target=targets)
        finally:
            _remove_new_hooks(self.model, before)


_HOOK_DICTS = ("_forward_pre_hooks", "_forward_hooks", "_backward_hooks", "_backward_pre_hooks")
_SIDE_TABLES = (
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
)


def _hook_ids(model: nn.Module) -> dict[tuple[str, str], set[int]]:
    """The ids of every module hook on ``model``, by (module path, hook kind)."""
    return {
        (path, kind): set(getattr(module, kind))
        for path, module in model.named_modules()
        for kind in _HOOK_DICTS
    }


def _remove_new_hooks(model: nn.Module, before: dict[tuple[str, str], set[int]]) -> None:
    """Drop the module hooks registered since ``before`` was taken."""
    for path, module in model.named_modules():
        for kind in _HOOK_DICTS:
            hooks = getattr(module, kind)
            for key in set(hooks) - before.get((path, kind), set()):
                del hooks[key]
                # torch keeps flags for some hooks in side tables under the same id.
                for side in _SIDE_TABLES:
                    getattr(module, side, {}).pop(key, None)
