"""SmoothGrad: attributions averaged over noisy copies of the input.

Smilkov, Thorat, Kim, Viégas, Wattenberg 2017, "SmoothGrad: removing noise by adding
noise", https://arxiv.org/abs/1706.03825. Engine: ``captum.attr.NoiseTunnel`` over
``captum.attr.Saliency`` or ``captum.attr.IntegratedGradients`` (zero baseline);
``smoothgrad_sq`` and ``vargrad`` are Captum's variants (Adebayo et al. 2018,
https://arxiv.org/abs/1810.03307).

The noise's standard deviation is, by default, relative: ``stdevs`` times each sample's
value range (max - min), the paper's "noise level". Each sample is explained in its own
NoiseTunnel call with the torch generator seeded from the run's seed and the sample's
bytes, so a sample gets the same noise whatever batch it is in (batch invariance) and
different samples get different noise.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Literal

import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Saliency
from pydantic import Field

from auditor.explainers.base import Explainer
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
        None, ge=1, le=10_000, description="Noisy copies per forward pass (default: all)."
    )


class SmoothGrad(Explainer):
    """Saliency or Integrated Gradients averaged over noisy inputs (Smilkov et al. 2017)."""

    name: ClassVar[str] = "smoothgrad"
    Params = SmoothGradParams

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = self.params
        if p.base == "saliency":
            tunnel = NoiseTunnel(Saliency(self.model))
            extra: dict[str, object] = {"abs": p.abs}
        else:
            tunnel = NoiseTunnel(IntegratedGradients(self.model))
            extra = {"n_steps": p.n_steps}
        rows = []
        for sample, target in zip(inputs, targets.tolist(), strict=True):
            stdev = p.stdevs
            if p.stdevs_mode == "relative":
                stdev *= float(sample.max() - sample.min())
            torch.manual_seed(sample_seed(self.context.seed, sample))
            rows.append(
                tunnel.attribute(
                    sample.unsqueeze(0),
                    nt_type=p.nt_type,
                    nt_samples=p.nt_samples,
                    nt_samples_batch_size=p.nt_samples_batch_size,
                    stdevs=float(stdev),  # Captum asserts a Python float, not an int
                    target=target,
                    **extra,
                )
            )
        return torch.cat(rows)


def sample_seed(seed: int, sample: torch.Tensor) -> int:
    """A seed for one sample's random draws, from the run's seed and the sample's bytes."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(int(seed).to_bytes(8, "little", signed=True))
    digest.update(sample.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return int.from_bytes(digest.digest(), "little") >> 1  # torch seeds are < 2**63
