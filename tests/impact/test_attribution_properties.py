"""Properties of split_amount, checked against exact fractions."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.impact.attribution import split_amount

totals = st.integers(min_value=0, max_value=10**15)
weight_maps = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.integers(min_value=0, max_value=10**6),
    min_size=1,
    max_size=30,
).filter(lambda weights: sum(weights.values()) > 0)


def exact_share(total: int, weights: dict[str, int], key: str) -> Fraction:
    return Fraction(total * weights[key], sum(weights.values()))


@settings(max_examples=400, deadline=None)
@given(total=totals, weights=weight_maps)
def test_shares_sum_exactly_to_the_total(total: int, weights: dict[str, int]) -> None:
    assert sum(split_amount(total, weights).values()) == total


@settings(max_examples=400, deadline=None)
@given(total=totals, weights=weight_maps)
def test_each_share_is_within_one_dong_of_its_exact_proportion(
    total: int, weights: dict[str, int]
) -> None:
    shares = split_amount(total, weights)

    assert list(shares) == list(weights)
    for key in weights:
        assert abs(shares[key] - exact_share(total, weights, key)) < 1
        assert shares[key] >= 0


@settings(max_examples=300, deadline=None)
@given(total=totals, weights=weight_maps)
def test_zero_weights_get_zero(total: int, weights: dict[str, int]) -> None:
    shares = split_amount(total, weights)

    assert all(shares[key] == 0 for key, weight in weights.items() if weight == 0)


@settings(max_examples=400, deadline=None)
@given(total=totals, weights=weight_maps)
def test_left_over_dong_go_to_the_largest_remainders_ties_to_the_earlier_key(
    total: int, weights: dict[str, int]
) -> None:
    shares = split_amount(total, weights)
    keys = list(weights)
    rounded_up = [k for k in keys if shares[k] > exact_share(total, weights, k)]
    rounded_down = [k for k in keys if shares[k] < exact_share(total, weights, k)]

    def remainder(key: str) -> Fraction:
        exact = exact_share(total, weights, key)
        return exact - (exact.numerator // exact.denominator)

    for up in rounded_up:
        for down in rounded_down:
            assert remainder(up) >= remainder(down)
            if remainder(up) == remainder(down):
                assert keys.index(up) < keys.index(down)


@settings(max_examples=200, deadline=None)
@given(total=totals, weights=weight_maps)
def test_the_split_is_deterministic(total: int, weights: dict[str, int]) -> None:
    assert split_amount(total, weights) == split_amount(total, dict(weights))
