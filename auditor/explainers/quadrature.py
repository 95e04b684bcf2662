"""Path sums of gradients for Integrated Gradients, fixed and adaptive (``n_steps: auto``).

The adaptive rule refines, per sample, a composite midpoint rule by tripling: ``m`` nodes
``(i + 1/2) / m`` are the centres of the thirds of ``3m`` intervals, so every earlier
gradient is kept and only ``2m`` new ones are computed (the nesting used by Numerical
Recipes' ``midpnt``: Press, Teukolsky, Vetterling, Flannery, "Numerical Recipes", 3rd ed.,
2007, section 4.4). The rule is open, it never evaluates the baseline or the input, and its
weights are equal, so the refined sum is a running sum of gradients. Gauss-Legendre rules
are not nested (no node is shared between two orders), and a rule of higher order buys
nothing on ReLU networks: along the path their output is piecewise linear, the integrand
piecewise constant, and on the digits CNN the midpoint rule with ``n`` nodes is as accurate
as Gauss-Legendre with ``n`` (bench/case_adaptive_ig.py).

A sample stops when its relative completeness error (Sundararajan, Taly, Yan 2017,
https://arxiv.org/abs/1703.01365, section 3: the attributions add up to
``f(x) - f(x0)``) is within the tolerance, or at the last rule within ``max_steps``.
Completeness is necessary, not sufficient: a coarse rule can add up by luck while single
features are off, which is why the first rule is not tiny (``min_steps``, 27 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from auditor.explainers.gradients import input_gradient
from auditor.explainers.passes import rows_per_pass

#: Floor of ``|f(x) - f(x0)|`` in the relative completeness error (output units).
EPS = 1e-6


def path_gradient_sum(
    model: nn.Module,
    baselines: torch.Tensor,
    difference: torch.Tensor,
    targets: torch.Tensor,
    alphas: Sequence[float],
    weights: Sequence[float],
    rows: int,
) -> torch.Tensor:
    """``sum_k w_k grad f_t(b + a_k (x - b))`` per sample: shape of ``baselines``.

    At most ``rows`` path points go through the model per pass: whole steps of the batch
    when they fit, else fewer samples one step at a time.
    """
    samples = max(1, min(len(baselines), rows))
    steps = max(1, rows // samples)
    total = torch.zeros_like(baselines)
    for first in range(0, len(baselines), samples):
        part = slice(first, first + samples)
        base, diff, t = baselines[part], difference[part], targets[part]
        for start in range(0, len(alphas), steps):
            chunk = alphas[start : start + steps]
            points = torch.cat([base + a * diff for a in chunk])
            grads = input_gradient(model, points, t.repeat(len(chunk)))
            w = torch.tensor(weights[start : start + steps], dtype=grads.dtype, device=grads.device)
            shaped = grads.view(len(chunk), len(t), *baselines.shape[1:])
            total[part] += (shaped * w.view(-1, *([1] * baselines.dim()))).sum(dim=0)
    return total


def midpoint_nodes(n: int) -> list[float]:
    """The ``n`` nodes ``(i + 1/2) / n`` of the composite midpoint rule on ``[0, 1]``."""
    return [(i + 0.5) / n for i in range(n)]


def tripling_nodes(n: int) -> list[float]:
    """The ``2n`` nodes that the ``3n``-node midpoint rule adds to the ``n``-node one."""
    return [(3 * i + j + 0.5) / (3 * n) for i in range(n) for j in (0, 2)]


def ladder(min_steps: int, max_steps: int) -> list[int]:
    """The rules tried: ``min_steps * 3**k`` nodes, up to ``max_steps`` (at least one)."""
    levels = [min_steps]
    while levels[-1] * 3 <= max_steps:
        levels.append(levels[-1] * 3)
    return levels


@dataclass(frozen=True)
class Adaptive:
    """Adaptive Integrated Gradients of a batch, with what each sample needed."""

    attributions: torch.Tensor  # shape of the inputs, float32
    steps: torch.Tensor  # (B,) int64: nodes of the sample's last rule = its gradients
    error: torch.Tensor  # (B,) float64: |sum(attr) - (f(x) - f(x0))| / max(|f(x) - f(x0)|, EPS)
    f_x: torch.Tensor  # (B,) the target's output at the input
    f_b: torch.Tensor  # (B,) and at the baseline

    def above(self, tolerance: float) -> torch.Tensor:
        """Samples whose error is not within ``tolerance`` (they stopped at the last rule)."""
        return ~(self.error <= tolerance)


def adaptive_integrated_gradients(
    model: nn.Module,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    targets: torch.Tensor,
    tolerance: float,
    min_steps: int,
    max_steps: int,
    rows: int | None = None,
) -> Adaptive:
    """Integrated Gradients with each sample's rule refined until it is complete within
    ``tolerance`` (relative), by tripling midpoint rules from ``min_steps`` nodes.

    Each round computes the new nodes of the samples still above the tolerance only, in as
    few passes as ``rows`` (default: ``rows_per_pass``) allows. Deterministic.
    """
    rows = rows or rows_per_pass(model, inputs)
    with torch.no_grad():
        ends = model(torch.cat([inputs, baselines])).gather(1, targets.repeat(2).view(-1, 1))
    f_x, f_b = ends.view(2, -1)
    delta = (f_x - f_b).to(torch.float64)
    scale = delta.abs().clamp_min(EPS)
    difference = inputs - baselines
    device = inputs.device
    total = torch.zeros(inputs.shape, dtype=torch.float64, device=device)  # sum of gradients
    steps = torch.zeros(len(inputs), dtype=torch.long, device=device)
    error = torch.full((len(inputs),), float("nan"), dtype=torch.float64, device=device)
    active = torch.arange(len(inputs), device=device)
    done = 0
    for n in ladder(min_steps, max_steps):
        alphas = midpoint_nodes(n) if done == 0 else tripling_nodes(done)
        total[active] += path_gradient_sum(
            model,
            baselines[active],
            difference[active],
            targets[active],
            alphas,
            [1.0] * len(alphas),
            rows,
        ).to(torch.float64)
        done = n
        steps[active] = n
        sums = (difference[active].to(torch.float64) * total[active] / n).flatten(1).sum(1)
        error[active] = (sums - delta[active]).abs() / scale[active]
        active = active[~(error[active] <= tolerance)]  # NaN keeps refining, then is flagged
        if len(active) == 0:
            break
    shape = (-1, *([1] * (inputs.dim() - 1)))
    attributions = (difference.to(torch.float64) * total / steps.view(shape)).to(torch.float32)
    return Adaptive(attributions, steps, error, f_x, f_b)
