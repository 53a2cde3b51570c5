"""Poverty classification under the standard in force, and the standards' data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import pairwise

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.impact.models import PovertyIndicatorRow, PovertyStandardRow
from marketplace.impact.poverty import (
    IncomeClass,
    classify_household,
    poverty_line,
    standard_in_force,
)
from marketplace.impact.standards_data import (
    DECREE_07_2021,
    DECREE_351_2025,
    STANDARDS,
    PovertyIndicator,
    PovertyStandard,
)

IN_2024 = date(2024, 6, 1)
IN_2028 = date(2028, 6, 1)


@pytest.mark.parametrize(
    ("income", "deprived", "area", "on", "expected"),
    [
        pytest.param(1_500_000, 3, "rural", IN_2024, "poor", id="07-rural-on-line-3-deprived"),
        pytest.param(1_500_000, 2, "rural", IN_2024, "near_poor", id="07-rural-on-line-2"),
        pytest.param(1_500_001, 12, "rural", IN_2024, "not_poor", id="07-rural-line-plus-1"),
        pytest.param(0, 0, "rural", IN_2024, "near_poor", id="07-rural-no-income-no-depriv"),
        pytest.param(2_000_000, 3, "urban", IN_2024, "poor", id="07-urban-on-line-3"),
        pytest.param(2_000_000, 2, "urban", IN_2024, "near_poor", id="07-urban-on-line-2"),
        pytest.param(2_000_001, 3, "urban", IN_2024, "not_poor", id="07-urban-line-plus-1"),
        pytest.param(1_800_000, 4, "urban", IN_2024, "poor", id="07-urban-above-rural-line"),
        pytest.param(2_200_000, 3, "rural", IN_2028, "poor", id="351-rural-on-line-3"),
        pytest.param(2_200_000, 2, "rural", IN_2028, "near_poor", id="351-rural-on-line-2"),
        pytest.param(2_200_001, 3, "rural", IN_2028, "not_poor", id="351-rural-line-plus-1"),
        pytest.param(2_800_000, 3, "urban", IN_2028, "poor", id="351-urban-on-line-3"),
        pytest.param(2_800_000, 2, "urban", IN_2028, "near_poor", id="351-urban-on-line-2"),
        pytest.param(2_800_001, 14, "urban", IN_2028, "not_poor", id="351-urban-line-plus-1"),
    ],
)
def test_households_are_classified_by_income_and_deprivation(
    income: int, deprived: int, area: str, on: date, expected: str
) -> None:
    assert classify_household(income, deprived, area, on) == expected


@pytest.mark.parametrize(
    ("on", "expected_code"),
    [
        pytest.param(date(2022, 1, 1), "07/2021/ND-CP", id="first-day-of-07"),
        pytest.param(date(2026, 12, 31), "07/2021/ND-CP", id="last-day-of-07"),
        pytest.param(date(2027, 1, 1), "351/2025/ND-CP", id="first-day-of-351"),
        pytest.param(date(2030, 12, 31), "351/2025/ND-CP", id="last-day-of-351"),
    ],
)
def test_the_standard_in_force_changes_on_its_first_day(on: date, expected_code: str) -> None:
    assert standard_in_force(on).code == expected_code


@pytest.mark.parametrize(
    "on",
    [
        pytest.param(date(2021, 12, 31), id="day-before-07"),
        pytest.param(date(2031, 1, 1), id="day-after-351"),
        pytest.param(date(1999, 1, 1), id="long-before"),
    ],
)
def test_a_date_outside_every_standard_is_an_error_not_a_guess(on: date) -> None:
    with pytest.raises(ValueError, match="no poverty standard is in force"):
        classify_household(1_000_000, 3, "rural", on)


def test_the_same_household_changes_class_when_the_new_standard_starts() -> None:
    assert classify_household(1_600_000, 3, "rural", date(2026, 12, 31)) == "not_poor"
    assert classify_household(1_600_000, 3, "rural", date(2027, 1, 1)) == "poor"


def test_the_result_is_a_plain_string_value() -> None:
    result = classify_household(1_000_000, 5, "rural", IN_2024)

    assert result == "poor"
    assert result is IncomeClass.POOR


@pytest.mark.parametrize(
    ("on", "area", "line"),
    [
        pytest.param(IN_2024, "rural", 1_500_000, id="07-rural"),
        pytest.param(IN_2024, "urban", 2_000_000, id="07-urban"),
        pytest.param(IN_2028, "rural", 2_200_000, id="351-rural"),
        pytest.param(IN_2028, "urban", 2_800_000, id="351-urban"),
    ],
)
def test_poverty_line_is_the_areas_line_on_that_day(on: date, area: str, line: int) -> None:
    assert poverty_line(on, area) == line


@pytest.mark.parametrize(
    ("income", "deprived", "area", "message"),
    [
        pytest.param(1_000_000, 3, "suburban", "area must be one of", id="unknown-area"),
        pytest.param(1_000_000, 3, "Rural", "area must be one of", id="area-wrong-case"),
        pytest.param(1_000_000, 3, "", "area must be one of", id="area-empty"),
        pytest.param(-1, 3, "rural", "income_per_person_month must not be neg", id="neg-income"),
        pytest.param(1_000_000, -1, "rural", "deprived_indicators must not be neg", id="neg-count"),
        pytest.param(1_000_000, 13, "rural", "has only 12 indicators", id="more-than-12"),
    ],
)
def test_impossible_inputs_are_refused(income: int, deprived: int, area: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classify_household(income, deprived, area, IN_2024)


@pytest.mark.parametrize(
    ("income", "deprived", "on"),
    [
        pytest.param(1_000_000.0, 3, IN_2024, id="float-income"),
        pytest.param(True, 3, IN_2024, id="bool-income"),
        pytest.param(1_000_000, 3.0, IN_2024, id="float-count"),
        pytest.param(1_000_000, True, IN_2024, id="bool-count"),
        pytest.param(1_000_000, 3, datetime(2024, 6, 1, tzinfo=UTC), id="datetime-not-date"),
        pytest.param(1_000_000, 3, "2024-06-01", id="string-date"),
    ],
)
def test_inputs_of_the_wrong_type_are_refused(income: object, deprived: object, on: object) -> None:
    with pytest.raises(TypeError):
        classify_household(income, deprived, "rural", on)  # type: ignore[arg-type]


def test_standards_can_be_passed_in_and_overlaps_are_refused() -> None:
    stricter = PovertyStandard(
        code="test/2024",
        name="test",
        valid_from=date(2024, 1, 1),
        valid_to=date(2024, 12, 31),
        rural_line=900_000,
        urban_line=1_000_000,
        deprivation_threshold=5,
        rural_average_living_line=None,
        urban_average_living_line=None,
        indicators_confirmed=False,
        indicators=DECREE_07_2021.indicators,
    )

    assert classify_household(950_000, 4, "rural", IN_2024, standards=(stricter,)) == "not_poor"
    assert classify_household(900_000, 4, "rural", IN_2024, standards=(stricter,)) == "near_poor"
    with pytest.raises(ValueError, match="poverty standards overlap"):
        standard_in_force(IN_2024, standards=(DECREE_07_2021, stricter))


def test_decree_07_has_12_indicators_two_in_each_of_6_dimensions() -> None:
    indicators = DECREE_07_2021.indicators
    dimensions = [i.dimension_code for i in indicators]

    assert len(indicators) == 12
    assert len({i.code for i in indicators}) == 12
    assert {d: dimensions.count(d) for d in dimensions} == {
        "employment": 2,
        "health": 2,
        "education": 2,
        "housing": 2,
        "water_sanitation": 2,
        "information": 2,
    }
    assert DECREE_07_2021.indicators_confirmed
    assert all(i.name_vi and i.name_en and i.dimension_name_vi for i in indicators)


def test_the_2027_indicator_list_is_marked_provisional() -> None:
    codes = {i.code for i in DECREE_351_2025.indicators}

    assert not DECREE_351_2025.indicators_confirmed
    assert "information_access_means" not in codes
    assert {"digital_service_use", "internet_access", "household_waste_handling"} <= codes
    assert len(codes) == len(DECREE_351_2025.indicators)


def test_the_average_living_standard_lines_are_known_only_for_decree_07() -> None:
    assert DECREE_07_2021.average_living_line("rural") == 2_250_000
    assert DECREE_07_2021.average_living_line("urban") == 3_000_000
    assert DECREE_351_2025.average_living_line("rural") is None


def test_the_standards_follow_each_other_without_gap_or_overlap() -> None:
    for earlier, later in pairwise(STANDARDS):
        assert (later.valid_from - earlier.valid_to).days == 1


async def test_the_migrated_tables_hold_exactly_the_standards_data(session: AsyncSession) -> None:
    rows = (await session.scalars(select(PovertyStandardRow).order_by("valid_from"))).all()
    indicator_rows = (
        await session.scalars(
            select(PovertyIndicatorRow).order_by(
                PovertyIndicatorRow.standard_id, PovertyIndicatorRow.position
            )
        )
    ).all()

    loaded = tuple(
        PovertyStandard(
            code=row.code,
            name=row.name,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            rural_line=row.rural_line,
            urban_line=row.urban_line,
            deprivation_threshold=row.deprivation_threshold,
            rural_average_living_line=row.rural_average_living_line,
            urban_average_living_line=row.urban_average_living_line,
            indicators_confirmed=row.indicators_confirmed,
            indicators=tuple(
                PovertyIndicator(
                    code=i.code,
                    dimension_code=i.dimension_code,
                    dimension_name_vi=i.dimension_name_vi,
                    dimension_name_en=i.dimension_name_en,
                    name_vi=i.name_vi,
                    name_en=i.name_en,
                )
                for i in indicator_rows
                if i.standard_id == row.id
            ),
        )
        for row in rows
    )

    assert loaded == STANDARDS
