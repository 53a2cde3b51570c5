"""Status on a day and "newly escaped", derived from the review history (pure rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from marketplace.sellers.models import PovertyStatus
from marketplace.sellers.standing import decision_disagrees, standing_on, years_before

P = PovertyStatus


@dataclass(frozen=True)
class Entry:
    status: str
    review_date: date


def history(*items: tuple[PovertyStatus, date]) -> list[Entry]:
    return [Entry(status.value, day) for status, day in items]


ESCAPED_2024 = history(
    (P.POOR, date(2022, 12, 15)),
    (P.NEAR_POOR, date(2023, 12, 15)),
    (P.NOT_POOR, date(2024, 12, 16)),
)


def test_before_the_first_review_there_is_no_status() -> None:
    standing = standing_on(ESCAPED_2024, date(2022, 12, 14))

    assert standing.status is None
    assert standing.newly_escaped is False


@pytest.mark.parametrize(
    ("day", "status"),
    [
        (date(2022, 12, 15), P.POOR),
        (date(2023, 12, 14), P.POOR),
        (date(2023, 12, 15), P.NEAR_POOR),
        (date(2024, 12, 15), P.NEAR_POOR),
        (date(2024, 12, 16), P.NOT_POOR),
        (date(2030, 1, 1), P.NOT_POOR),
    ],
    ids=str,
)
def test_the_status_on_a_day_is_the_latest_review_on_or_before_it(
    day: date, status: PovertyStatus
) -> None:
    assert standing_on(ESCAPED_2024, day).status is status


def test_a_household_that_left_the_near_poor_list_is_newly_escaped_from_that_review() -> None:
    standing = standing_on(ESCAPED_2024, date(2025, 6, 1))

    assert standing.newly_escaped is True
    assert standing.escaped_on == date(2024, 12, 16)
    assert standing.review_date == date(2024, 12, 16)


@pytest.mark.parametrize(
    ("day", "newly"),
    [
        pytest.param(date(2027, 12, 16), True, id="exactly-3-years-after-leaving"),
        pytest.param(date(2027, 12, 17), False, id="3-years-and-a-day"),
        pytest.param(date(2024, 12, 16), True, id="the-day-it-left"),
        pytest.param(date(2024, 12, 15), False, id="the-day-before-still-near-poor"),
    ],
)
def test_newly_escaped_lasts_three_years_counting_the_day_exactly_three_years_on(
    day: date, newly: bool
) -> None:
    assert standing_on(ESCAPED_2024, day).newly_escaped is newly


def test_leaving_counts_from_the_first_review_off_the_list_not_from_later_ones() -> None:
    entries = history(
        (P.POOR, date(2021, 12, 15)),
        (P.AVERAGE_LIVING_STANDARD, date(2022, 12, 15)),
        (P.NOT_POOR, date(2024, 12, 15)),
    )

    assert standing_on(entries, date(2025, 12, 15)).newly_escaped is True
    assert standing_on(entries, date(2025, 12, 16)).newly_escaped is False
    assert standing_on(entries, date(2025, 12, 15)).escaped_on == date(2022, 12, 15)


def test_falling_back_into_poverty_ends_newly_escaped_and_a_new_exit_restarts_it() -> None:
    entries = history(
        (P.POOR, date(2022, 12, 15)),
        (P.NOT_POOR, date(2023, 12, 15)),
        (P.NEAR_POOR, date(2024, 12, 15)),
        (P.NOT_POOR, date(2025, 12, 15)),
    )

    assert standing_on(entries, date(2024, 6, 1)).newly_escaped is True
    fallen = standing_on(entries, date(2025, 6, 1))
    assert (fallen.status, fallen.newly_escaped, fallen.escaped_on) == (P.NEAR_POOR, False, None)
    assert standing_on(entries, date(2028, 12, 15)).escaped_on == date(2025, 12, 15)
    assert standing_on(entries, date(2028, 12, 15)).newly_escaped is True


def test_a_household_never_poor_is_not_newly_escaped() -> None:
    entries = history((P.NOT_POOR, date(2023, 12, 15)), (P.NOT_POOR, date(2024, 12, 15)))

    assert standing_on(entries, date(2025, 1, 1)).newly_escaped is False


def test_a_recorded_newly_escaped_decision_starts_the_three_years_without_earlier_history() -> None:
    entries = history((P.NEWLY_ESCAPED, date(2023, 12, 15)))

    assert standing_on(entries, date(2026, 12, 15)).newly_escaped is True
    assert standing_on(entries, date(2026, 12, 16)).newly_escaped is False
    assert standing_on(entries, date(2026, 12, 16)).status is P.NEWLY_ESCAPED


def test_a_poor_household_is_never_newly_escaped() -> None:
    entries = history((P.NOT_POOR, date(2022, 12, 15)), (P.POOR, date(2023, 12, 15)))

    assert standing_on(entries, date(2024, 1, 1)).newly_escaped is False


def test_three_years_before_29_february_is_28_february() -> None:
    assert years_before(date(2028, 2, 29), 3) == date(2025, 2, 28)
    assert years_before(date(2027, 3, 1), 3) == date(2024, 3, 1)


@pytest.mark.parametrize(
    ("decided", "implied", "disagrees"),
    [
        (P.POOR, "poor", False),
        (P.POOR, "near_poor", True),
        (P.POOR, "not_poor", True),
        (P.NEAR_POOR, "near_poor", False),
        (P.NEAR_POOR, "poor", True),
        (P.NOT_POOR, "not_poor", False),
        (P.NOT_POOR, "poor", True),
        (P.NEWLY_ESCAPED, "not_poor", False),
        (P.NEWLY_ESCAPED, "near_poor", True),
        (P.AVERAGE_LIVING_STANDARD, "not_poor", False),
        (P.AVERAGE_LIVING_STANDARD, "poor", True),
    ],
    ids=str,
)
def test_a_decision_disagrees_with_the_figures_only_across_the_poor_near_poor_lines(
    decided: PovertyStatus, implied: str, disagrees: bool
) -> None:
    assert decision_disagrees(decided, implied) is disagrees
