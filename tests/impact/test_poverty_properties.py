"""Properties of the classification: more income never makes a household worse off on paper,
more deprivation never makes it better off."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.impact.poverty import classify_household, poverty_line

SEVERITY = {"not_poor": 0, "near_poor": 1, "poor": 2}

days = st.dates(min_value=date(2022, 1, 1), max_value=date(2030, 12, 31))
areas = st.sampled_from(["rural", "urban"])
incomes = st.integers(min_value=0, max_value=10_000_000)
deprivations = st.integers(min_value=0, max_value=11)


@settings(max_examples=400, deadline=None)
@given(a=incomes, b=incomes, deprived=deprivations, area=areas, on=days)
def test_raising_income_never_makes_the_class_worse(
    a: int, b: int, deprived: int, area: str, on: date
) -> None:
    low, high = sorted((a, b))

    richer = classify_household(high, deprived, area, on)
    poorer = classify_household(low, deprived, area, on)

    assert SEVERITY[richer] <= SEVERITY[poorer]


@settings(max_examples=300, deadline=None)
@given(income=incomes, a=deprivations, b=deprivations, area=areas, on=days)
def test_more_deprivation_never_makes_the_class_better(
    income: int, a: int, b: int, area: str, on: date
) -> None:
    fewer, more = sorted((a, b))

    more_deprived = classify_household(income, more, area, on)
    less_deprived = classify_household(income, fewer, area, on)

    assert SEVERITY[more_deprived] >= SEVERITY[less_deprived]


@settings(max_examples=300, deadline=None)
@given(income=incomes, deprived=deprivations, area=areas, on=days)
def test_only_income_at_or_below_the_line_is_poor_or_near_poor(
    income: int, deprived: int, area: str, on: date
) -> None:
    below = income <= poverty_line(on, area)

    assert (classify_household(income, deprived, area, on) != "not_poor") == below


@settings(max_examples=200, deadline=None)
@given(area=areas, on=days)
def test_the_line_itself_is_below_and_one_dong_more_is_above(area: str, on: date) -> None:
    line = poverty_line(on, area)

    assert classify_household(line, 3, area, on) == "poor"
    assert classify_household(line + 1, 3, area, on) == "not_poor"
