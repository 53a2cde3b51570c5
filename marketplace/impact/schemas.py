"""What the impact API reads and writes. Amounts are whole đồng; months are "YYYY-MM"."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from marketplace.impact.models import ExportFormat, ExportStatus, StatusGroup

Month = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}$", examples=["2026-03"])]


class GroupFigures(msgspec.Struct, frozen=True):
    households: int
    revenue_amount: int


class AreaMonthRead(msgspec.Struct, frozen=True):
    month: str
    households_selling: int
    revenue_amount: int
    groups: dict[StatusGroup, GroupFigures]
    """Households with revenue in the group that month (a household reviewed mid-month may
    count in two groups) and the revenue attributed to the group."""
    income_uplift_amount: int
    """Total uplift: the marketplace income of all households (revenue x income share)."""
    median_uplift_per_person: int | None
    households_closing_gap: int
    households_income_unknown: int
    """Households selling whose review recorded no income: their gap is unknown."""


class CommuneTotalRead(msgspec.Struct, frozen=True):
    """A commune's figures over the range; its name is in /api/geo (public, cacheable), so
    a province summary does not load every commune of the province on each request."""

    commune_code: str
    households_selling_months: int
    """Household-months with sales over the range (a household selling 3 months counts 3)."""
    revenue_amount: int
    revenue_poor: int
    revenue_near_poor: int
    income_uplift_amount: int


class AreaSummaryRead(msgspec.Struct, frozen=True):
    level: Literal["commune", "province"]
    code: str
    name: str
    province_code: str
    admin_version: str
    month_from: str
    month_to: str
    months: list[AreaMonthRead]
    communes: list[CommuneTotalRead] | None = None


class HouseholdUpliftRead(msgspec.Struct, frozen=True):
    household_id: uuid.UUID
    household_name: str | None
    """Only for an official of the household's own jurisdiction."""
    commune_code: str
    province_code: str
    month: str
    status: StatusGroup
    members_count: int
    revenue_amount: int
    income_amount: int
    uplift_per_person: int
    poverty_line: int | None
    baseline_income_per_person: int | None
    gap_before: int | None
    gap_after: int | None
    closes_gap: bool | None
    """Marketplace income alone takes the household from at or under the line to above it;
    None when the review recorded no income (unknown, not no)."""


class HouseholdUpliftPage(msgspec.Struct, frozen=True):
    items: list[HouseholdUpliftRead]
    total: int
    limit: int
    offset: int


class PublicGroupRead(msgspec.Struct, frozen=True):
    households: int | Literal["< 5"]
    revenue_amount: int | None
    """None whenever the group has fewer than 5 households: no figure that could point at
    one household is published."""


class PublicMonthRead(msgspec.Struct, frozen=True):
    month: str
    households_selling: int | Literal["< 5"]
    poor: PublicGroupRead
    near_poor: PublicGroupRead


class PublicProvinceRead(msgspec.Struct, frozen=True):
    province_code: str
    province_name: str
    month_from: str
    month_to: str
    months: list[PublicMonthRead]


class IncomeShareRead(msgspec.Struct, frozen=True):
    category: str
    share_percent: str
    """Exact decimal text ("40", "37.5")."""
    share_bps: int
    updated_at: datetime


class IncomeShareUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    share_percent: float | int | str
    """0 to 100, at most two decimals."""


class ExportCreate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: ExportFormat
    month_from: Month | None = None
    month_to: Month | None = None
    commune_code: str | None = None
    province_code: str | None = None
    status: StatusGroup | None = None


class ExportRead(msgspec.Struct, frozen=True):
    id: uuid.UUID
    format: ExportFormat
    status: ExportStatus
    progress_percent: int
    month_from: str
    month_to: str
    commune_code: str | None
    province_code: str | None
    row_count: int | None
    error: str | None
    download_url: str | None
    """A presigned link, only once done; it expires (`download_expires_at`)."""
    download_expires_at: datetime | None
    created_at: datetime
