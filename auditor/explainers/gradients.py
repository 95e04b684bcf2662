"""The gradient of each sample's target output with respect to its input, shared.

Saliency (|gradient|) and Input x Gradient (input * gradient) read the same gradient; when
a run has both, the explain stage computes it once per batch and keeps it until every
reader has had it, within a memory budget (past the budget, readers recompute it).
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

#: Bytes of gradients kept at most while waiting for their other readers.
BUDGET = 512 * 2**20


def input_gradient(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``d model(x)[i, targets[i]] / d x[i]`` for each sample: shape of ``inputs``.

    Samples are independent (eval mode), so one backward pass of the summed target outputs
    gives every sample's gradient; Captum's ``compute_gradients`` computes the same.
    """
    with torch.enable_grad():
        x = inputs.detach().requires_grad_(True)
        score = model(x).gather(1, targets.view(-1, 1)).sum()
        (grad,) = torch.autograd.grad(score, x)
    return grad.detach()


def batch_key(inputs: torch.Tensor, targets: torch.Tensor) -> bytes:
    """A digest of a batch's content and targets: the same batch has the same key."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(tuple(inputs.shape)).encode())
    digest.update(inputs.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    digest.update(targets.detach().to("cpu", torch.int64).contiguous().numpy().tobytes())
    return digest.digest()


class SharedGradients:
    """Input gradients of ``model`` kept for ``readers`` explainer jobs, each reading a batch
    once; ``readers`` counts the jobs that have not ended yet.

    An entry is dropped when its last reader has had it, and everything is dropped when the
    last reader's job has ended (``reader_done``), whether it computed, was reused from an
    earlier run or failed. Gradients of any other model (a randomized copy, for instance)
    are computed and never kept.
    """

    def __init__(self, model: nn.Module, readers: int, budget: int = BUDGET) -> None:
        self.model = model
        self.readers = readers
        self.budget = budget
        self.kept_bytes = 0
        self.computed = 0  # gradients computed (not served from the store); for tests
        self._entries: dict[bytes, tuple[torch.Tensor, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def reader_done(self) -> None:
        """One reader's job has ended: later gets keep gradients for the readers still to run."""
        self.readers -= 1
        if self.readers <= 0:
            self._entries.clear()
            self.kept_bytes = 0

    def get(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if model is not self.model:
            return input_gradient(model, inputs, targets)
        key = batch_key(inputs, targets)
        if key in self._entries:
            grad, left = self._entries.pop(key)
            if left > 1:
                self._entries[key] = (grad, left - 1)
            else:
                self.kept_bytes -= grad.nbytes
            return grad
        grad = input_gradient(model, inputs, targets)
        self.computed += 1
        if self.readers > 1 and self.kept_bytes + grad.nbytes <= self.budget:
            self._entries[key] = (grad, self.readers - 1)
            self.kept_bytes += grad.nbytes
        return grad
