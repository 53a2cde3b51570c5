"""Impact tables: poverty standards, the attribution ledger and the aggregates kept from it.

- Poverty standards as rows, so reviews and reports can refer to the standard they used. The
  rows are written by migration 0004 from `standards_data.STANDARDS`; the code classifies
  from that same constant, and a test checks that the two agree.
- The attribution ledger (`attribution_entries`, append-only) and the events it recorded
  (`attribution_events`, the idempotency guard), migration 0008.
- Aggregates kept current from the ledger in the same transaction: one row per household
  and month (`household_month_impact`) and one per commune or province and month
  (`area_month_impact`); income shares per category; officials' export jobs.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base


class PovertyStandardRow(Base):
    """A multidimensional poverty standard; amounts in đồng per person per month."""

    __tablename__ = "poverty_standards"
    __table_args__ = (
        CheckConstraint("valid_from <= valid_to", name="valid_period"),
        CheckConstraint("rural_line > 0 AND urban_line > 0", name="lines_positive"),
        CheckConstraint("deprivation_threshold > 0", name="threshold_positive"),
    )

    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    rural_line: Mapped[int] = mapped_column(BigInteger)
    urban_line: Mapped[int] = mapped_column(BigInteger)
    deprivation_threshold: Mapped[int] = mapped_column(SmallInteger)
    rural_average_living_line: Mapped[int | None] = mapped_column(BigInteger)
    urban_average_living_line: Mapped[int | None] = mapped_column(BigInteger)
    indicators_confirmed: Mapped[bool]

    indicators: Mapped[list[PovertyIndicatorRow]] = relationship(
        back_populates="standard", lazy="raise", order_by="PovertyIndicatorRow.position"
    )


class PovertyIndicatorRow(Base):
    """One deprivation indicator of a standard, in the decree's order (`position`)."""

    __tablename__ = "poverty_indicators"
    __table_args__ = (
        UniqueConstraint("standard_id", "code"),
        UniqueConstraint("standard_id", "position"),
    )

    standard_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("poverty_standards.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[str] = mapped_column(String(64))
    dimension_code: Mapped[str] = mapped_column(String(64))
    dimension_name_vi: Mapped[str] = mapped_column(String(200))
    dimension_name_en: Mapped[str] = mapped_column(String(200))
    name_vi: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))

    standard: Mapped[PovertyStandardRow] = relationship(back_populates="indicators", lazy="raise")


class StatusGroup(StrEnum):
    """A household's poverty status on the day of a sale, as the ledger records it.

    The sellers' statuses plus `unreviewed`: a household with no commune review on or before
    the day of sale is counted, never guessed into a group."""

    POOR = "poor"
    NEAR_POOR = "near_poor"
    NEWLY_ESCAPED = "newly_escaped"
    AVERAGE_LIVING_STANDARD = "average_living_standard"
    NOT_POOR = "not_poor"
    UNREVIEWED = "unreviewed"


class EntryKind(StrEnum):
    SALE = "sale"
    REFUND = "refund"


class AttributionEvent(Base):
    """One settlement event attributed: the idempotency guard of `record_event`.

    The unique event id is inserted first; a second delivery (even a concurrent one) waits on
    the unique index for the first to commit and then finds the event already attributed."""

    __tablename__ = "attribution_events"

    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[uuid.UUID] = mapped_column(index=True)
    occurred_at: Mapped[datetime]
    entries_count: Mapped[int] = mapped_column(Integer)
    amount_total: Mapped[int] = mapped_column(BigInteger)


class AttributionEntry(Base):
    """A row of the append-only attribution ledger: đồng attributed to one household.

    Everything the reports need is copied onto the row as it was on the day of sale (status,
    the review's income, members, commune, area), so a later review or a move never rewrites
    what a past month showed. Refund rows are negative and carry the sale's date, status and
    place: a refund reverses the sale where the sale was counted. A database trigger refuses
    UPDATE and DELETE (migration 0008)."""

    __tablename__ = "attribution_entries"
    __table_args__ = (
        UniqueConstraint("event_id", "order_line_id", "household_id"),
        CheckConstraint(
            "(kind = 'sale' AND amount > 0) OR (kind = 'refund' AND amount < 0)",
            name="amount_sign_follows_kind",
        ),
        CheckConstraint("members_count >= 1", name="members_positive"),
        Index("ix_attribution_entries_household_day", "household_id", "sale_date"),
        Index("ix_attribution_entries_order", "order_id"),
        Index("ix_attribution_entries_order_line", "order_line_id"),
    )

    event_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[uuid.UUID]
    order_line_id: Mapped[uuid.UUID]
    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT")
    )
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    product_id: Mapped[uuid.UUID]
    lot_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    category: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    poverty_status: Mapped[str] = mapped_column(String(32))
    income_per_person_month: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """From the review in force on the day of sale; None when the review recorded no income."""
    members_count: Mapped[int] = mapped_column(Integer)
    area: Mapped[str] = mapped_column(String(8))
    commune_code: Mapped[str] = mapped_column(String(10))
    province_code: Mapped[str] = mapped_column(String(10))
    admin_version: Mapped[str] = mapped_column(String(10))
    sale_date: Mapped[date] = mapped_column(Date)
    """Vietnam (UTC+7) calendar day of the settlement; a refund row keeps its sale's day."""
    booked_at: Mapped[datetime]
    """When the event happened: settled_at for a sale, refunded_at for a refund."""


class IncomeShare(Base):
    """The part of revenue that is the household's own income after costs, in basis points.

    The row `default` applies to every category without a row of its own (40% as seeded)."""

    __tablename__ = "income_shares"
    __table_args__ = (CheckConstraint("share_bps BETWEEN 0 AND 10000", name="share_range"),)

    category: Mapped[str] = mapped_column(String(32), unique=True)
    share_bps: Mapped[int] = mapped_column(Integer)
    updated_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class HouseholdMonth(Base):
    """One household's marketplace figures for one month, recomputed from its ledger rows
    whenever new rows arrive (under a row lock), never per request.

    Status, area, members and baseline income are those of the month's latest sale."""

    __tablename__ = "household_month_impact"
    __table_args__ = (
        UniqueConstraint("household_id", "month"),
        # Pages are read newest month first, then by household: the index gives that order,
        # so a page stops after its rows instead of sorting the whole range.
        Index(
            "ix_household_month_impact_commune",
            "admin_version",
            "commune_code",
            "month",
            "household_id",
        ),
        Index(
            "ix_household_month_impact_province",
            "admin_version",
            "province_code",
            "month",
            "household_id",
        ),
    )

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT")
    )
    month: Mapped[date] = mapped_column(Date)
    commune_code: Mapped[str] = mapped_column(String(10))
    province_code: Mapped[str] = mapped_column(String(10))
    admin_version: Mapped[str] = mapped_column(String(10))
    area: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(32))
    members_count: Mapped[int] = mapped_column(Integer)
    revenue_amount: Mapped[int] = mapped_column(BigInteger)
    revenue_poor: Mapped[int] = mapped_column(BigInteger)
    revenue_near_poor: Mapped[int] = mapped_column(BigInteger)
    revenue_newly_escaped: Mapped[int] = mapped_column(BigInteger)
    revenue_average_living_standard: Mapped[int] = mapped_column(BigInteger)
    revenue_not_poor: Mapped[int] = mapped_column(BigInteger)
    revenue_unreviewed: Mapped[int] = mapped_column(BigInteger)
    income_amount: Mapped[int] = mapped_column(BigInteger)
    """Household income from the marketplace this month: revenue x income share, floored."""
    uplift_per_person: Mapped[int] = mapped_column(BigInteger)
    poverty_line: Mapped[int | None] = mapped_column(BigInteger, default=None)
    baseline_income_per_person: Mapped[int | None] = mapped_column(BigInteger, default=None)
    gap_before: Mapped[int | None] = mapped_column(BigInteger, default=None)
    gap_after: Mapped[int | None] = mapped_column(BigInteger, default=None)
    closes_gap: Mapped[bool | None] = mapped_column(default=None)


class AreaLevel(StrEnum):
    COMMUNE = "commune"
    PROVINCE = "province"


class AreaMonth(Base):
    """Aggregates of one commune or province for one month, kept by adding the change of
    each household-month row as it is recomputed (never recomputed per request)."""

    __tablename__ = "area_month_impact"
    __table_args__ = (
        UniqueConstraint("level", "admin_version", "code", "month"),
        Index("ix_area_month_impact_province", "level", "admin_version", "province_code", "month"),
    )

    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(10))
    province_code: Mapped[str] = mapped_column(String(10))
    admin_version: Mapped[str] = mapped_column(String(10))
    month: Mapped[date] = mapped_column(Date)
    households_selling: Mapped[int] = mapped_column(Integer, default=0)
    revenue_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    households_poor: Mapped[int] = mapped_column(Integer, default=0)
    revenue_poor: Mapped[int] = mapped_column(BigInteger, default=0)
    households_near_poor: Mapped[int] = mapped_column(Integer, default=0)
    revenue_near_poor: Mapped[int] = mapped_column(BigInteger, default=0)
    households_newly_escaped: Mapped[int] = mapped_column(Integer, default=0)
    revenue_newly_escaped: Mapped[int] = mapped_column(BigInteger, default=0)
    households_average_living_standard: Mapped[int] = mapped_column(Integer, default=0)
    revenue_average_living_standard: Mapped[int] = mapped_column(BigInteger, default=0)
    households_not_poor: Mapped[int] = mapped_column(Integer, default=0)
    revenue_not_poor: Mapped[int] = mapped_column(BigInteger, default=0)
    households_unreviewed: Mapped[int] = mapped_column(Integer, default=0)
    revenue_unreviewed: Mapped[int] = mapped_column(BigInteger, default=0)
    income_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    """Total uplift: the marketplace income of every household of the area that month."""
    households_closing_gap: Mapped[int] = mapped_column(Integer, default=0)
    households_income_unknown: Mapped[int] = mapped_column(Integer, default=0)
    median_uplift_per_person: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Median of the selling households' per-person uplift: not additive, so it is recomputed
    from the household-month rows of the area, under the area row's lock, whenever the area
    changes (last writer sees every committed change)."""


class ExportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class ImpactExport(Base):
    """An official's export: the request (scope and filters, checked when made), then the
    worker's progress and the object it wrote."""

    __tablename__ = "impact_exports"
    __table_args__ = (
        CheckConstraint("progress_percent BETWEEN 0 AND 100", name="progress_range"),
        Index("ix_impact_exports_requester", "requested_by_user_id", "created_at"),
    )

    requested_by_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE")
    )
    format: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=ExportStatus.QUEUED.value)
    progress_percent: Mapped[int] = mapped_column(SmallInteger, default=0)
    admin_version: Mapped[str] = mapped_column(String(10))
    province_code: Mapped[str | None] = mapped_column(String(10), default=None)
    commune_code: Mapped[str | None] = mapped_column(String(10), default=None)
    status_filter: Mapped[str | None] = mapped_column(String(32), default=None)
    month_from: Mapped[date] = mapped_column(Date)
    month_to: Mapped[date] = mapped_column(Date)
    include_names: Mapped[bool]
    """Names only when the requester is an official whose jurisdiction holds the scope."""
    object_key: Mapped[str | None] = mapped_column(String(200), default=None)
    row_count: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(String(200), default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
