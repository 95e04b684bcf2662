"""SmoothGrad: attributions averaged over noisy copies of the input.

Smilkov, Thorat, Kim, Viégas, Wattenberg 2017, "SmoothGrad: removing noise by adding
noise", https://arxiv.org/abs/1706.03825. The computation of ``captum.attr.NoiseTunnel``
over ``captum.attr.Saliency`` or ``captum.attr.IntegratedGradients`` (zero baseline);
``smoothgrad_sq`` and ``vargrad`` are Captum's variants (Adebayo et al. 2018,
https://arxiv.org/abs/1810.03307).

The noise's standard deviation is, by default, relative: ``stdevs`` times each sample's
value range (max - min), the paper's "noise level". Each sample's noise comes from a torch
generator seeded from the run's seed and the sample's bytes, so a sample gets the same
noise whatever batch it is in (batch invariance) and different samples get different
noise: the noise NoiseTunnel would draw for that sample alone after seeding torch so (the
tests check the two equal). The noisy copies of a whole batch then go through the base
method together, where NoiseTunnel would need one call per sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal

import torch
from pydantic import Field

from auditor.explainers.base import Explainer, sample_seed
from auditor.explainers.gradients import input_gradient
from auditor.explainers.integrated_gradients import integrated_gradients
from auditor.explainers.passes import rows_per_pass
from auditor.plugin import Params


class SmoothGradParams(Params):
    base: Literal["saliency", "integrated_gradients"] = Field(
        "saliency", description="The attribution averaged over noisy inputs."
    )
    nt_type: Literal["smoothgrad", "smoothgrad_sq", "vargrad"] = Field(
        "smoothgrad", description="Mean, mean of squares, or variance of the noisy attributions."
    )
    nt_samples: int = Field(16, ge=1, le=10_000, description="Noisy copies per sample.")
    stdevs: float = Field(
        0.15,
        ge=0.0,
        le=1e6,
        description="Noise standard deviation: a fraction of each sample's value range "
        "(max - min) when stdevs_mode is relative, else in input units.",
    )
    stdevs_mode: Literal["relative", "absolute"] = Field(
        "relative", description="How stdevs is read: relative to the sample's range, or absolute."
    )
    abs: bool = Field(True, description="Saliency base only: absolute value of each gradient.")
    n_steps: int = Field(
        16, ge=1, le=10_000, description="Integrated-gradients base only: integration steps."
    )
    nt_samples_batch_size: int | None = Field(
        None,
        ge=1,
        le=10_000,
        description="Noise is drawn in chunks of this many copies, as NoiseTunnel does with "
        "the same argument (default: all at once). Forward passes are sized automatically.",
    )


class SmoothGrad(Explainer):
    """Saliency or Integrated Gradients averaged over noisy inputs (Smilkov et al. 2017)."""

    name: ClassVar[str] = "smoothgrad"
    differentiable = True
    on_device = True
    Params = SmoothGradParams

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        n = p.nt_samples
        rows = rows_per_pass(self.model, inputs)
        total = torch.zeros_like(inputs)
        total_sq = torch.zeros_like(inputs) if p.nt_type != "smoothgrad" else None
        if n <= rows:  # the copies of whole samples in one pass
            per_pass = rows // n
            for first in range(0, len(inputs), per_pass):
                part = slice(first, first + per_pass)
                x, t = inputs[part], targets[part]
                noisy = torch.cat([torch.cat(list(self._noisy_chunks(s))) for s in x])
                a = self._base(noisy, t.repeat_interleave(n)).view(len(x), n, *x.shape[1:])
                total[part] = a.sum(dim=1)
                if total_sq is not None:
                    total_sq[part] = (a * a).sum(dim=1)
        else:  # one sample's copies over several passes, chunk by chunk as they are drawn
            for i, (sample, target) in enumerate(zip(inputs, targets, strict=True)):
                for chunk in self._noisy_chunks(sample):
                    for rows_of in chunk.split(rows):
                        a = self._base(rows_of, target.repeat(len(rows_of)))
                        total[i] += a.sum(dim=0)
                        if total_sq is not None:
                            total_sq[i] += (a * a).sum(dim=0)
        mean = total * (1 / n)
        if total_sq is None:
            return mean
        mean_sq = total_sq * (1 / n)
        return mean_sq if p.nt_type == "smoothgrad_sq" else mean_sq - mean * mean

    def _noisy_chunks(self, sample: torch.Tensor) -> Iterator[torch.Tensor]:
        """The sample's ``nt_samples`` noisy copies, in the chunks NoiseTunnel draws them in."""
        p = self.params
        stdev = p.stdevs
        if p.stdevs_mode == "relative":
            stdev *= float(sample.max() - sample.min())
        generator = torch.Generator().manual_seed(sample_seed(self.context.seed, sample))
        chunk = p.nt_samples_batch_size or p.nt_samples
        sizes = [chunk] * (p.nt_samples // chunk) + [p.nt_samples % chunk]
        for k in sizes:
            if k:
                std = torch.tensor(float(stdev)).repeat(k, *sample.shape)
                noise = torch.normal(0.0, std, generator=generator)  # on the CPU: same draws
                yield sample.unsqueeze(0) + noise.to(sample.device)

    def _base(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The base method's attributions of noisy copies (one target each)."""
        p = self.params
        if p.base == "saliency":
            grad = input_gradient(self.model, inputs, targets)
            return grad.abs() if p.abs else grad
        return integrated_gradients(
            self.model, inputs, torch.zeros_like(inputs), targets, p.n_steps
        )
