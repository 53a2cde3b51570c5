"""Classifying a household's review numbers under the poverty standard in force on a day.

Pure functions over the standards' data (`standards_data.STANDARDS` by default), so the rule
can be checked without a database and the same figures are what the migration loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum

from marketplace.impact.standards_data import STANDARDS, Area, PovertyStandard


class IncomeClass(StrEnum):
    """What the income and deprivation figures imply; the commune's decision may differ."""

    POOR = "poor"
    NEAR_POOR = "near_poor"
    NOT_POOR = "not_poor"


def _check_day(on: date) -> date:
    # A datetime is a date subclass, but which calendar day it means depends on a time zone
    # the caller must choose (Vietnam, UTC+7), so only a plain date is accepted.
    if isinstance(on, datetime) or not isinstance(on, date):
        raise TypeError(f"on must be a datetime.date, got {type(on).__name__}")
    return on


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _check_area(area: str) -> Area:
    try:
        return Area(area)
    except ValueError:
        raise ValueError(f"area must be one of {[a.value for a in Area]}, got {area!r}") from None


def standard_in_force(
    on: date, standards: Sequence[PovertyStandard] = STANDARDS
) -> PovertyStandard:
    """The standard whose period includes `on`; a day outside every known standard is an
    error, never a guess from the nearest one."""
    day = _check_day(on)
    matches = [s for s in standards if s.in_force_on(day)]
    if not matches:
        raise ValueError(f"no poverty standard is in force on {day.isoformat()}")
    if len(matches) > 1:
        codes = ", ".join(s.code for s in matches)
        raise ValueError(f"poverty standards overlap on {day.isoformat()}: {codes}")
    return matches[0]


def poverty_line(on: date, area: str, standards: Sequence[PovertyStandard] = STANDARDS) -> int:
    """Income line in đồng per person per month for `area` ("rural" or "urban") on `on`."""
    return standard_in_force(on, standards).line(_check_area(area))


def classify_household(
    income_per_person_month: int,
    deprived_indicators: int,
    area: str,
    on: date,
    standards: Sequence[PovertyStandard] = STANDARDS,
) -> str:
    """Poor: income at or below the line AND at least the threshold of deprived indicators.
    Near-poor: income at or below the line with fewer deprivations. Above the line a household
    is neither, however deprived (the test is income AND deprivation, not either/or).
    """
    income = _check_count("income_per_person_month", income_per_person_month)
    deprived = _check_count("deprived_indicators", deprived_indicators)
    checked_area = _check_area(area)
    standard = standard_in_force(on, standards)
    if deprived > len(standard.indicators):
        raise ValueError(
            f"deprived_indicators is {deprived} but {standard.code} has only "
            f"{len(standard.indicators)} indicators"
        )
    if income > standard.line(checked_area):
        return IncomeClass.NOT_POOR
    if deprived >= standard.deprivation_threshold:
        return IncomeClass.POOR
    return IncomeClass.NEAR_POOR
