"""GradientSHAP (expected gradients): gradients at random points between background and input.

Lundberg, Lee 2017, "A Unified Approach to Interpreting Model Predictions",
https://arxiv.org/abs/1705.07874; Erion et al. 2021, "Improving performance of deep
learning models with axiomatic attribution priors and expected gradients",
https://arxiv.org/abs/1906.10670.

The attribution of a sample ``x`` is the mean over ``n_samples`` draws of
``(x + e - b) * grad f((1 - a) b + a (x + e))``, with ``b`` a background row, ``a ~ U(0, 1)``
and ``e ~ N(0, stdevs^2)``: the computation of ``captum.attr.GradientShap``, whose draws it
reproduces (numpy's generator for ``b`` and ``a``, torch's for ``e``, each seeded with the
run's seed). Every sample gets the same draws, so a sample's attribution does not depend on
the batch it came in, and all (sample, draw) rows of a batch go through the model together:
Captum would need one call per sample for the same invariance. The mean convergence delta
(sum of attributions minus ``f(x + e) - f(b)``, over the draws) is kept per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from auditor.explainers.base import Explainer
from auditor.explainers.passes import rows_per_pass
from auditor.explainers.shap_support import background_sample, numpy_seed
from auditor.plugin import Params


class GradientShapParams(Params):
    n_samples: int = Field(
        50, ge=1, le=100_000, description="Random (baseline, point on the path) draws per sample."
    )
    stdevs: float = Field(
        0.0, ge=0.0, le=100.0, description="Std of Gaussian noise added to each draw's input."
    )
    n_background: int = Field(
        64, ge=1, le=100_000, description="Background samples from the slice (seeded subset)."
    )


@dataclass(frozen=True)
class Draws:
    """One sample's random draws; every sample of the run gets the same ones."""

    baselines: torch.Tensor  # (n, *shape): the background row of each draw
    baseline_index: torch.Tensor  # (n,) its index in the background
    coefficients: torch.Tensor  # (n,) the position on the path, U(0, 1)
    noise: torch.Tensor | None  # (n, *shape) Gaussian noise, None when stdevs is 0

    def to(self, device: torch.device) -> Draws:
        """The same draws on ``device``."""
        return Draws(
            self.baselines.to(device),
            self.baseline_index.to(device),
            self.coefficients.to(device),
            None if self.noise is None else self.noise.to(device),
        )


def draw(seed: int, background: torch.Tensor, n: int, stdevs: float) -> Draws:
    """The draws ``captum.attr.GradientShap`` makes for one sample after seeding with ``seed``."""
    with numpy_seed(seed):
        index = np.random.choice(len(background), n)  # Captum: NoiseTunnel's baseline draw
        coefficients = np.random.uniform(0.0, 1.0, n)  # Captum: InputBaselineXGradient
    noise = None
    if stdevs > 0:
        shape = (n, *background.shape[1:])
        generator = torch.Generator().manual_seed(seed)
        noise = torch.normal(0.0, torch.tensor(stdevs).repeat(shape), generator=generator)
    baseline_index = torch.as_tensor(index, dtype=torch.long)
    return Draws(
        background[baseline_index],
        baseline_index,
        torch.as_tensor(coefficients, dtype=background.dtype),
        noise,
    )


class GradientShap(Explainer):
    """Expected gradients over background samples (Lundberg and Lee 2017; Erion et al. 2021)."""

    name: ClassVar[str] = "gradient_shap"
    uses_background = True
    differentiable = True
    on_device = True
    stats = ("convergence_delta",)
    Params = GradientShapParams
    _draws: Draws | None = None
    _background_out: torch.Tensor | None = None

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        if self._draws is None:
            background = background_sample(self.context, p.n_background, self.name)
            # Drawn on the CPU (the same draws on every device), then moved to the inputs'.
            drawn = draw(self.context.seed, background, p.n_samples, p.stdevs)
            self._draws = drawn.to(inputs.device)
            background = background.to(inputs.device)
            with torch.no_grad():
                self._background_out = self.model(background)
        with torch.no_grad():  # f(x) for the delta; with noise, f(x + e) is taken per draw
            outputs = self.model(inputs) if p.stdevs == 0 else None
        rows = rows_per_pass(self.model, inputs)
        draws = min(p.n_samples, rows)  # per forward pass and sample
        samples = max(1, rows // draws)  # per forward pass
        sums = torch.zeros_like(inputs)
        gaps = torch.zeros(len(inputs), dtype=torch.float64, device=inputs.device)
        for i in range(0, len(inputs), samples):
            for k in range(0, p.n_samples, draws):
                chunk = slice(i, i + samples)
                part, gap = self._rows(inputs[chunk], targets[chunk], outputs, chunk, k, draws)
                sums[chunk] += part
                gaps[chunk] += gap
        self.record(convergence_delta=gaps / p.n_samples)
        return sums / p.n_samples

    def _rows(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        outputs: torch.Tensor | None,
        chunk: slice,
        first: int,
        count: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sums over draws ``first:first + count`` of each sample's contributions and deltas.

        Rows are (sample, draw) pairs, sample-major, as Captum orders them.
        """
        d = self._draws
        assert d is not None and self._background_out is not None
        draws = slice(first, first + count)
        x = inputs.unsqueeze(1)  # (samples, 1, *shape) against (1, draws, *shape)
        if d.noise is not None:
            x = x + d.noise[draws].unsqueeze(0)
        b = d.baselines[draws].unsqueeze(0)
        a = d.coefficients[draws].view(1, -1, *([1] * (inputs.dim() - 1)))
        point = (a * x + (1.0 - a) * b).flatten(0, 1).requires_grad_()
        n, m = len(inputs), point.shape[0] // len(inputs)
        rows_target = targets.repeat_interleave(m)
        out = self.model(point).gather(1, rows_target.unsqueeze(1)).squeeze(1)
        (grad,) = torch.autograd.grad(out.sum(), point)
        contributions = (x - b) * grad.view(n, m, *inputs.shape[1:])
        with torch.no_grad():
            if outputs is None:
                end = self.model(x.flatten(0, 1)).gather(1, rows_target.unsqueeze(1)).view(n, m)
            else:
                end = outputs[chunk].gather(1, targets.unsqueeze(1))  # (n, 1)
            begin = self._background_out[d.baseline_index[draws]][:, targets].T  # (n, m)
            gap = contributions.flatten(2).sum(2) - (end - begin)
        return contributions.sum(1), gap.double().sum(1)
