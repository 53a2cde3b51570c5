"""split_amount: whole đồng, summing exactly to the total, largest remainder first."""

from __future__ import annotations

from fractions import Fraction

import pytest

from marketplace.impact.attribution import split_amount


def test_the_issue_example_gives_the_extra_dong_to_the_first_key() -> None:
    assert split_amount(100, {"a": 1, "b": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}


def test_ties_in_the_remainder_go_to_the_earlier_key_in_the_mapping() -> None:
    assert split_amount(2, {"a": 1, "b": 1, "c": 1}) == {"a": 1, "b": 1, "c": 0}
    assert split_amount(2, {"c": 1, "b": 1, "a": 1}) == {"c": 1, "b": 1, "a": 0}


def test_the_largest_remainder_wins_before_key_order() -> None:
    # Exact shares 3.33... and 6.66...: the single left-over đồng goes to "b".
    assert split_amount(10, {"a": 1, "b": 2}) == {"a": 3, "b": 7}


def test_a_cooperative_sale_is_split_by_kilograms_contributed() -> None:
    shares = split_amount(
        1_000_000, {"hộ Nguyễn Văn An": 120, "hộ Trần Thị Bình": 45, "hộ Lê Cường": 35}
    )

    assert shares == {
        "hộ Nguyễn Văn An": 600_000,
        "hộ Trần Thị Bình": 225_000,
        "hộ Lê Cường": 175_000,
    }


def test_a_zero_weight_gets_nothing_even_with_dong_left_over() -> None:
    assert split_amount(5, {"a": 0, "b": 1, "c": 1, "d": 0}) == {"a": 0, "b": 3, "c": 2, "d": 0}


def test_a_single_weight_takes_the_whole_total() -> None:
    assert split_amount(180_000, {"only": 7}) == {"only": 180_000}


def test_a_zero_total_gives_zero_shares() -> None:
    assert split_amount(0, {"a": 3, "b": 4}) == {"a": 0, "b": 0}


def test_shares_keep_the_order_of_the_weights() -> None:
    assert list(split_amount(99, {"z": 1, "m": 5, "a": 2})) == ["z", "m", "a"]


def test_huge_totals_are_split_exactly_where_floats_would_lose_dong() -> None:
    total = 10**30 + 7
    weights = {"a": 1, "b": 2, "c": 3}

    shares = split_amount(total, weights)

    assert sum(shares.values()) == total
    for key, weight in weights.items():
        assert abs(shares[key] - Fraction(total * weight, 6)) < 1


@pytest.mark.parametrize(
    ("total", "weights", "message"),
    [
        pytest.param(-1, {"a": 1}, "total must not be negative", id="negative-total"),
        pytest.param(10, {"a": 1, "b": -1}, "weight of 'b' must not be negative", id="neg-weight"),
        pytest.param(10, {}, "empty or all zero", id="empty-weights"),
        pytest.param(10, {"a": 0, "b": 0}, "empty or all zero", id="all-zero-weights"),
        pytest.param(0, {}, "empty or all zero", id="empty-weights-zero-total"),
    ],
)
def test_invalid_amounts_or_weights_are_refused(
    total: int, weights: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        split_amount(total, weights)


@pytest.mark.parametrize(
    ("total", "weights"),
    [
        pytest.param(100.0, {"a": 1}, id="float-total"),
        pytest.param(True, {"a": 1}, id="bool-total"),
        pytest.param(100, {"a": 0.5, "b": 0.5}, id="float-weights"),
        pytest.param(100, {"a": True, "b": 1}, id="bool-weight"),
    ],
)
def test_floats_and_bools_are_refused_as_amounts_or_weights(
    total: object, weights: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        split_amount(total, weights)  # type: ignore[arg-type]
