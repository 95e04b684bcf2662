"""The run's seeding: every generator restarts and torch runs deterministic algorithms."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from auditor.runner import deterministic_algorithms, seed_everything


@pytest.fixture
def torch_flags() -> Iterator[None]:
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch._C._set_deterministic_algorithms(enabled, warn_only=warn_only)


def draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_restarts_every_generator(torch_flags: None) -> None:
    seed_everything(7)
    first = draws()
    seed_everything(7)
    assert draws() == first
    seed_everything(8)
    assert draws() != first


def test_a_run_uses_deterministic_algorithms_and_restores_the_callers_setting(
    torch_flags: None,
) -> None:
    torch._C._set_deterministic_algorithms(False)
    with deterministic_algorithms():
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert not torch.are_deterministic_algorithms_enabled()
    torch._C._set_deterministic_algorithms(True, warn_only=False)
    with deterministic_algorithms():
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
