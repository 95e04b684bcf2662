"""summarize: the Student-t 95% interval equals scipy.stats' for the same values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from auditor.stats import summarize


@pytest.mark.parametrize("n", [2, 3, 10, 64, 1000])
def test_the_interval_is_scipys_t_interval(n: int) -> None:
    values = np.random.default_rng(n).normal(3.0, 2.0, size=n)
    summary = summarize(values)
    low, high = stats.t.interval(0.95, n - 1, loc=values.mean(), scale=stats.sem(values))
    assert summary.ci95 == pytest.approx((low, high), rel=1e-12, abs=1e-12)
    assert summary.n == n and summary.std == pytest.approx(values.std(ddof=1), rel=1e-12)


def test_non_finite_values_are_left_out_and_one_value_has_no_spread() -> None:
    summary = summarize([np.nan, 4.0, np.inf])
    assert (summary.mean, summary.std, summary.ci95, summary.n) == (4.0, 0.0, (4.0, 4.0), 1)
