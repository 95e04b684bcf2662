"""How many rows one pass through the model may take, where a method expands a batch.

Integrated gradients (path points), GradientSHAP (draws), SmoothGrad (noisy copies) and
LIME (perturbations) turn a batch into many rows. Fewer, larger passes are faster on small
models; on large ones the rows must fit in memory. Two bounds apply: the rows' input
elements, and the activations the backward pass keeps, estimated once per model and input
shape as twice the output elements of the model's leaf modules for one sample.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import nn

#: Input elements per pass: 16 MB of float32.
ROW_ELEMENTS = 2**22
#: Activation elements per pass (estimated): 512 MB of float32.
ACTIVATION_ELEMENTS = 2**27
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
    by_input = ROW_ELEMENTS // numel
    by_activations = ACTIVATION_ELEMENTS // activation_elements(model, shape, inputs.dtype)
    return max(1, min(by_input, by_activations))


def activation_elements(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> int:
    """Twice the output elements of ``model``'s leaf modules for one sample of ``shape``."""
    per_shape = _measured.setdefault(model, {})
    if shape not in per_shape:
        per_shape[shape] = _measure(model, shape, dtype)
    return per_shape[shape]


def _measure(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> int:
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *shape, dtype=dtype))
    except Exception:  # a model that cannot take zeros: a generous estimate instead
        total = 0
    finally:
        for handle in handles:
            handle.remove()
    return 2 * total if total > 0 else FALLBACK_RATIO * math.prod(shape)
