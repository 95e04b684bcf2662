"""How a check's value reads in the report."""

from __future__ import annotations

from auditor.report.common import fmt_value


def test_region_names_with_commas_are_separated_by_semicolons() -> None:
    regions = ["rows 8-15, cols 16-23", "rows 0-7, cols 0-7"]
    assert fmt_value(regions) == "rows 8-15, cols 16-23; rows 0-7, cols 0-7"


def test_plain_names_are_separated_by_commas_and_long_lists_shortened() -> None:
    assert fmt_value(["age", "income"]) == "age, income"
    names = [f"x{i}" for i in range(12)]
    assert fmt_value(names) == "x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, ... (12 in all)"
    assert fmt_value(0.5) == "0.5"
