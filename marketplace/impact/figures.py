"""Pure arithmetic of impact: local days, months, a household's monthly uplift against the
poverty line, and what one household-month adds to its commune's and province's aggregates.

No I/O here, so the rules can be read and tested on their own; the service feeds them rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

from marketplace.impact.models import StatusGroup
from marketplace.impact.poverty import poverty_line

VIETNAM = timezone(timedelta(hours=7), "ICT")
"""Vietnam keeps UTC+7 all year (no daylight saving since 1975): a fixed offset needs no
tz database on the machine."""

BPS = 10_000
"""Income shares are basis points: 4000 is 40%."""

DEFAULT_SHARE_KEY = "default"

STATUS_GROUPS: tuple[StatusGroup, ...] = tuple(StatusGroup)


def local_day(at: datetime) -> date:
    """The Vietnamese calendar day of an instant: a sale settled at 23:30 UTC on the 31st
    counts on the 1st of the next month, as the household and the commune see it."""
    if at.tzinfo is None:
        raise ValueError("a settlement time must be timezone-aware")
    return at.astimezone(VIETNAM).date()


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_between(first: date, last: date) -> int:
    """Number of months from `first` to `last`, both included."""
    return (last.year - first.year) * 12 + last.month - first.month + 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def share_bps_for(category: str, shares: Mapping[str, int]) -> int:
    """A category's own income share, else the default row's."""
    return shares.get(category, shares[DEFAULT_SHARE_KEY])


@dataclass(frozen=True, slots=True)
class MonthFacts:
    """What the ledger says about one household in one month (sums over its rows, and the
    facts of the month's latest sale)."""

    household_id: uuid.UUID
    month: date
    commune_code: str
    province_code: str
    admin_version: str
    area: str
    status: str
    members_count: int
    baseline_income_per_person: int | None
    revenue_by_status: Mapping[str, int]
    income_bps_amount: int
    """Σ amount x share_bps over the month's rows: exact, divided by 10,000 once."""


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """A household's month as reports show it. Gaps are None when the baseline income or the
    poverty line is unknown: an unknown is shown as unknown, never as zero."""

    household_id: uuid.UUID
    month: date
    commune_code: str
    province_code: str
    admin_version: str
    area: str
    status: str
    members_count: int
    revenue_by_status: Mapping[str, int]
    revenue_amount: int
    income_amount: int
    uplift_per_person: int
    poverty_line: int | None
    baseline_income_per_person: int | None
    gap_before: int | None
    gap_after: int | None
    closes_gap: bool | None


def month_figures(facts: MonthFacts) -> MonthFigures:
    """Uplift of a household for a month and its gap to the line before and after.

    - income = ⌊Σ amount x share / 10,000⌋ (đồng), uplift per person = ⌊income / members⌋;
    - the line is the one of the standard in force on the month's first day for the area
      (standards change on 1 January, so one month has one standard); a month outside every
      known standard has no line;
    - gap = max(0, line - income per person); a household is below the line when its income
      is at or under it, so the uplift closes the gap when baseline ≤ line < baseline + uplift.
    """
    revenue = sum(facts.revenue_by_status.values())
    income = max(facts.income_bps_amount, 0) // BPS
    uplift = income // facts.members_count
    try:
        line: int | None = poverty_line(facts.month, facts.area)
    except ValueError:
        line = None
    baseline = facts.baseline_income_per_person
    gap_before = gap_after = None
    closes_gap = None
    if line is not None and baseline is not None:
        gap_before = max(0, line - baseline)
        gap_after = max(0, line - baseline - uplift)
        closes_gap = baseline <= line < baseline + uplift
    return MonthFigures(
        household_id=facts.household_id,
        month=facts.month,
        commune_code=facts.commune_code,
        province_code=facts.province_code,
        admin_version=facts.admin_version,
        area=facts.area,
        status=facts.status,
        members_count=facts.members_count,
        revenue_by_status={g.value: facts.revenue_by_status.get(g.value, 0) for g in STATUS_GROUPS},
        revenue_amount=revenue,
        income_amount=income,
        uplift_per_person=uplift,
        poverty_line=line,
        baseline_income_per_person=baseline,
        gap_before=gap_before,
        gap_after=gap_after,
        closes_gap=closes_gap,
    )


AREA_COUNTERS: tuple[str, ...] = (
    "households_selling",
    "revenue_amount",
    *(f"households_{g.value}" for g in STATUS_GROUPS),
    *(f"revenue_{g.value}" for g in STATUS_GROUPS),
    "income_amount",
    "households_closing_gap",
    "households_income_unknown",
)
"""The additive columns of `area_month_impact`."""


@dataclass(frozen=True, slots=True)
class AreaKey:
    level: str
    code: str
    province_code: str
    admin_version: str
    month: date


@dataclass(frozen=True, slots=True)
class HouseholdMonthView:
    """The columns of a household-month row that the area aggregates count."""

    commune_code: str
    province_code: str
    admin_version: str
    month: date
    revenue_amount: int
    revenue_by_status: Mapping[str, int]
    income_amount: int
    closes_gap: bool | None
    baseline_known: bool


def contribution(row: HouseholdMonthView) -> dict[str, int]:
    """What one household-month adds to its area's counters. A household counts as selling
    (and in a status group) only while its net revenue there is positive: a fully refunded
    month leaves every count as if the sale never happened."""
    selling = row.revenue_amount > 0
    out = {
        "households_selling": int(selling),
        "revenue_amount": row.revenue_amount,
        "income_amount": row.income_amount,
        "households_closing_gap": int(selling and row.closes_gap is True),
        "households_income_unknown": int(selling and not row.baseline_known),
    }
    for group in STATUS_GROUPS:
        amount = row.revenue_by_status.get(group.value, 0)
        out[f"households_{group.value}"] = int(amount > 0)
        out[f"revenue_{group.value}"] = amount
    return out


@dataclass(slots=True)
class AreaDeltas:
    """Changes to add to area rows, summed over every household-month a transaction touched."""

    by_key: dict[AreaKey, dict[str, int]] = field(default_factory=dict)

    def apply(self, row: HouseholdMonthView, sign: int) -> None:
        counts = contribution(row)
        for key in (
            AreaKey("commune", row.commune_code, row.province_code, row.admin_version, row.month),
            AreaKey("province", row.province_code, row.province_code, row.admin_version, row.month),
        ):
            target = self.by_key.setdefault(key, dict.fromkeys(AREA_COUNTERS, 0))
            for name, value in counts.items():
                target[name] += sign * value

    def nonzero(self) -> list[tuple[AreaKey, dict[str, int]]]:
        """Changes in a fixed key order (the lock order of the area rows)."""
        items = [(k, v) for k, v in self.by_key.items() if any(v.values())]
        return sorted(
            items, key=lambda kv: (kv[0].level, kv[0].admin_version, kv[0].code, kv[0].month)
        )
