"""A household's poverty standing on a day, derived from its review history.

Pure functions over review entries, so the rules are checked without a database:

- The status on day D is that of the latest entry reviewed on or before D (of several
  entries of one review day, the last recorded: a correction).
- "Newly escaped" (hộ mới thoát nghèo) is derived, not stored: on D the household is
  neither poor nor near-poor, and it left the poor or near-poor list within the 3 years
  up to D, counting the day exactly 3 years before D. The day it left is the first review
  after its last poor or near-poor review; a history that starts with a recorded
  `newly_escaped` decision (the household was registered after escaping) left on that
  review's date.
- The review numbers' classification is compared with the decision: the decision wins,
  a disagreement is flagged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from marketplace.impact.poverty import IncomeClass
from marketplace.sellers.models import POOR_OR_NEAR_POOR, PovertyStatus

NEWLY_ESCAPED_YEARS = 3


class ReviewLike(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def review_date(self) -> date: ...


@dataclass(frozen=True, slots=True)
class Standing:
    status: PovertyStatus | None
    """The recorded status in force on the day; None before the first review."""
    newly_escaped: bool
    escaped_on: date | None
    """The review on which the household last left the poor or near-poor list."""
    review_date: date | None
    """The review the status comes from."""


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def standing_on(entries: Iterable[ReviewLike], day: date) -> Standing:
    """`entries` in effect order (review date, then recording order); later ones ignored."""
    latest: ReviewLike | None = None
    escaped_on: date | None = None
    was_poor = False
    for entry in entries:
        if entry.review_date > day:
            break
        latest = entry
        status = PovertyStatus(entry.status)
        if status in POOR_OR_NEAR_POOR:
            was_poor, escaped_on = True, None
        elif escaped_on is None and (was_poor or status is PovertyStatus.NEWLY_ESCAPED):
            escaped_on = entry.review_date
    if latest is None:
        return Standing(status=None, newly_escaped=False, escaped_on=None, review_date=None)
    status = PovertyStatus(latest.status)
    newly = (
        status not in POOR_OR_NEAR_POOR
        and escaped_on is not None
        and escaped_on >= years_before(day, NEWLY_ESCAPED_YEARS)
    )
    return Standing(
        status=status,
        newly_escaped=newly,
        escaped_on=escaped_on if status not in POOR_OR_NEAR_POOR else None,
        review_date=latest.review_date,
    )


def decision_disagrees(decided: PovertyStatus, implied: str) -> bool:
    """Whether the decided status contradicts what the income and deprivation figures
    imply. Newly escaped, average living standard and not poor all mean "above the poor
    and near-poor lists" to the income test, so any of them agrees with `not_poor`."""
    implied_class = IncomeClass(implied)
    if decided is PovertyStatus.POOR:
        return implied_class is not IncomeClass.POOR
    if decided is PovertyStatus.NEAR_POOR:
        return implied_class is not IncomeClass.NEAR_POOR
    return implied_class is not IncomeClass.NOT_POOR
