"""``seeded``: the draws an explainer makes inside it, and the caller's streams after it."""

from __future__ import annotations

import numpy as np
import torch

from auditor.explainers.base import seeded


def test_draws_inside_are_those_of_the_seed() -> None:
    torch.manual_seed(3)
    np.random.seed(3)
    expected = torch.rand(4), np.random.rand(4), torch.normal(0.0, torch.ones(3))
    torch.manual_seed(99)
    with seeded(3):
        inside = torch.rand(4), np.random.rand(4), torch.normal(0.0, torch.ones(3))
    torch.testing.assert_close(inside[0], expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(inside[1], expected[1])
    torch.testing.assert_close(inside[2], expected[2], rtol=0, atol=0)


def test_the_callers_streams_go_on_as_if_the_block_had_not_run() -> None:
    torch.manual_seed(5)
    np.random.seed(5)
    torch.rand(2), np.random.rand(2)
    expected = torch.rand(3), np.random.rand(3)
    torch.manual_seed(5)
    np.random.seed(5)
    torch.rand(2), np.random.rand(2)
    with seeded(11):
        torch.rand(100), np.random.rand(100)
    after = torch.rand(3), np.random.rand(3)
    torch.testing.assert_close(after[0], expected[0], rtol=0, atol=0)
    np.testing.assert_array_equal(after[1], expected[1])
