"""How many rows one pass through the model may take, where a method expands a batch.

Integrated gradients (path points), GradientSHAP (draws), SmoothGrad (noisy copies) and
LIME (perturbations) turn a batch into many rows. Passes far larger than the cache run
slower per row, not faster: each layer's output leaves the cache before the next layer
reads it. Measured on this project's 2-core build machine (a Xeon VM; 2 MB L2 per core,
260 MB shared L3), forward + input gradient of 32,768 rows of the digits CNN (15k
activation elements a row) took 0.56 s in passes of 1,148 rows and 1.22 s in one pass;
resnet18 at 224x224 (15M a row) ran fastest at 8 rows a pass, 4 rows within 3% of that,
1.2x faster than 32 and 1.6x faster than 1 (bench/RESULTS.md, case "passes"). So:

- aim at ``CACHE_ELEMENTS`` activation elements a pass (64 MB of float32: the digits CNN's
  fastest size; tuned on that machine, not derived from its cache sizes),
- but take at least ``MIN_ROWS`` rows, so that a large model's layers still see a batch,
- and never more than ``ROW_ELEMENTS`` input elements or ``ACTIVATION_ELEMENTS`` activation
  elements (memory), whichever is smaller.

Activations are estimated once per model and input shape as twice the output elements of
the model's leaf modules for one sample, counted by forward hooks. TorchScript modules
refuse hooks (scripted ones raise, traced ones never call them), so a model that holds any
counts instead the outputs of the tensor operations its forward runs, seen by a
``TorchDispatchMode`` (which sees operations inside compiled code too), views left out.
That count is what the hooks count when every leaf module is one operation (the digits
CNN: 14,612 elements both ways) and a little more where a model also adds or concatenates
outside modules (resnet18: 16.9M against 15.0M by hooks, so passes a little smaller). It
is preferred to a fixed ratio of activations to input elements, which would be off by 2x
between these two models alone; the ratio remains the fallback when a model cannot be run.

On a CUDA device there is no cache to fit: a pass takes as many rows as a share of the
device's free memory holds (``auditor.device.memory_rows``: a quarter of it, at most 65,536
rows), counting 4 bytes per activation and input element of a row.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from auditor.device import memory_rows, model_device

#: Input elements per pass, at most: 16 MB of float32.
ROW_ELEMENTS = 2**22
#: Activation elements per pass (estimated), at most: 512 MB of float32.
ACTIVATION_ELEMENTS = 2**27
#: Activation elements per pass aimed at: 64 MB of float32 (tuned on the digits CNN).
CACHE_ELEMENTS = 2**24
#: Rows per pass at least (within the bounds above).
MIN_ROWS = 4
#: The estimate per input element when the model cannot be measured.
FALLBACK_RATIO = 100

_measured: weakref.WeakKeyDictionary[nn.Module, dict[tuple[int, ...], int]] = (
    weakref.WeakKeyDictionary()
)


def rows_per_pass(model: nn.Module, inputs: torch.Tensor) -> int:
    """How many rows shaped like ``inputs[0]`` one pass through ``model`` may take (>= 1)."""
    if len(inputs) == 0:
        return 1
    shape = tuple(inputs.shape[1:])
    numel = max(1, inputs[0].numel())
    activations = activation_elements(model, shape, inputs.dtype)
    on_gpu = memory_rows(model_device(model), 4 * (activations + 2 * numel))
    if on_gpu is not None:
        return on_gpu
    bound = min(ROW_ELEMENTS // numel, ACTIVATION_ELEMENTS // activations)
    return max(1, min(bound, max(MIN_ROWS, CACHE_ELEMENTS // activations)))


def contains_torchscript(model: nn.Module) -> bool:
    """Whether ``model`` is TorchScript or holds a TorchScript module anywhere inside it (an
    eager wrapper around a scripted network, the run's precision wrapper): hooks on those
    modules are refused (scripted) or never called (traced)."""
    return any(isinstance(m, torch.jit.ScriptModule) for m in model.modules())


def activation_elements(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> int:
    """Twice the output elements of ``model``'s leaf modules for one sample of ``shape``."""
    per_shape = _measured.setdefault(model, {})
    if shape not in per_shape:
        per_shape[shape] = _measure(model, shape, dtype)
    return per_shape[shape]


def _measure(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> int:
    sample = torch.zeros(1, *shape, dtype=dtype, device=model_device(model))
    scripted = contains_torchscript(model)
    try:
        total = _count_operations(model, sample) if scripted else _count_leaves(model, sample)
    except Exception:  # a model that cannot take zeros: a generous estimate instead
        total = 0
    return 2 * total if total > 0 else FALLBACK_RATIO * math.prod(shape)


def _count_leaves(model: nn.Module, sample: torch.Tensor) -> int:
    """Output elements of ``model``'s leaf modules in one forward pass (forward hooks)."""
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model(sample)
    finally:
        for handle in handles:
            handle.remove()
    return total


class _OutputCounter(TorchDispatchMode):
    """Adds up the output elements of every tensor operation that is not a view."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            self.total += sum(
                t.numel() for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)
            )
        return out


def _count_operations(model: nn.Module, sample: torch.Tensor) -> int:
    """Output elements of the operations of one forward pass; no hooks (TorchScript)."""
    counter = _OutputCounter()
    with torch.no_grad(), counter:
        model(sample)
    return counter.total
