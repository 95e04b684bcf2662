"""``ModelFeed``: the user's model behind a feed (text, structured data), with torch.

Kept apart from ``auditor.modalities.base`` so that the modalities' numpy side (what the
report uses) does not import torch; ``base`` still offers ``ModelFeed`` by name.
"""

from __future__ import annotations

from torch import nn


class ModelFeed(nn.Module):
    """The user's model behind a feed that turns one tensor per sample into its arguments.

    Its modules have the model's own names (``fc1``, not ``inner.fc1``), so layer names in
    specs, model tables and randomization steps read as the user wrote them: the model is
    kept unregistered as ``inner`` and called, and its children, parameters and buffers are
    registered here too (the same objects; a deep copy keeps them shared)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "inner", module)
        for name, child in module.named_children():
            self.add_module(name, child)
        for name, param in module.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buffer in module.named_buffers(recurse=False):
            self.register_buffer(name, buffer)
        self.training = module.training

    def train(self, mode: bool = True) -> ModelFeed:
        super().train(mode)
        self.inner.train(mode)
        return self
