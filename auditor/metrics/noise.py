"""Random draws of metrics, seeded per sample.

A metric that perturbs its inputs (infidelity, max-sensitivity, stability) draws each
sample's noise from a generator of its own, seeded with the run's seed, the metric's name
and the sample's position in the slice. A sample's draws therefore do not depend on the
batch it is in, on the shard a Ray worker gets, or on how Captum splits the perturbed
copies into passes: the same sample gets the same noise in a local run and on any number of
workers.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import torch


def sample_generator(seed: int, salt: str, position: int) -> torch.Generator:
    """A CPU generator for one sample: seeded with (run seed, ``salt``, slice position)."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(salt.encode()), int(position)])
    return torch.Generator().manual_seed(int(state.generate_state(1, np.uint64)[0] >> 1))


class SampleNoise:
    """Noise for a batch's samples, each from its own generator (``sample_generator``).

    ``draw(expanded)`` takes the batch repeated ``k`` times sample by sample (Captum's
    ``repeat_interleave`` layout: ``k`` copies of sample 0, then of sample 1, ...) and
    returns noise of that shape: the next ``k`` draws of each sample's generator. Draws
    continue across calls, so the ``j``-th perturbation of a sample is the same however
    the copies are split into calls.
    """

    def __init__(
        self,
        seed: int,
        salt: str,
        positions: np.ndarray,
        draw: Callable[..., torch.Tensor] = torch.randn,
    ) -> None:
        self.generators = [sample_generator(seed, salt, int(p)) for p in positions]
        self.sampler = draw

    def draw(self, expanded: torch.Tensor) -> torch.Tensor:
        """Noise shaped like ``expanded`` ``(B * k, ...)``, dtype included."""
        n = len(self.generators)
        if n == 0 or len(expanded) % n:
            raise ValueError(
                f"{len(expanded)} perturbed inputs are not whole copies of a batch of {n}"
            )
        k, shape = len(expanded) // n, tuple(expanded.shape[1:])
        dtype = expanded.dtype
        parts = [self.sampler((k, *shape), generator=g, dtype=dtype) for g in self.generators]
        return torch.cat(parts).to(expanded.device)
