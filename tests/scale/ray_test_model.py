"""The digits CNN with failures a Ray test plants through marker files in ``markers``.

Only passes that differentiate the input (explainers on Ray workers; the driver's predict
and layer passes run without gradients) look at the markers:

- ``slow``: sleep 0.1 s per pass, so that a kill lands mid-explainer;
- ``die_once``: the first pass to find it removes it and ends its process (a dead worker);
- ``fail``: raise ``ValueError("planted failure")`` on every pass (a shard that fails twice);
- ``calls``: when present, one line is appended per pass (counts work done after a resume).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from examples.models import DigitsCNN


class MarkedDigitsCNN(DigitsCNN):
    def __init__(self, markers: str, num_classes: int = 10) -> None:
        super().__init__(num_classes=num_classes)
        self.markers = Path(markers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            self._planted()
        return super().forward(x)

    def _planted(self) -> None:
        calls = self.markers / "calls"
        if calls.exists():
            with open(calls, "a") as fh:
                fh.write(f"{os.getpid()}\n")
        if (self.markers / "slow").exists():
            time.sleep(0.1)
        if (self.markers / "fail").exists():
            raise ValueError("planted failure")
        try:
            (self.markers / "die_once").unlink()
        except FileNotFoundError:
            return
        os._exit(3)
