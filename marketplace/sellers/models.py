"""Households, their poverty status history, helpers' consent, cooperatives and members.

A household's poverty status is never a flag: it is the history of commune reviews, and the
status on a day is the latest review on or before that day.
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
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base

ADMIN_VERSION = "2025-07"


class PovertyStatus(StrEnum):
    POOR = "poor"
    NEAR_POOR = "near_poor"
    NEWLY_ESCAPED = "newly_escaped"
    AVERAGE_LIVING_STANDARD = "average_living_standard"
    NOT_POOR = "not_poor"


POOR_OR_NEAR_POOR = frozenset({PovertyStatus.POOR, PovertyStatus.NEAR_POOR})


class ConsentScope(StrEnum):
    """What a community digital helper may do for a household."""

    MANAGE_PROFILE = "manage_profile"
    MANAGE_PRODUCTS = "manage_products"
    MANAGE_ORDERS = "manage_orders"
    VIEW_INCOME = "view_income"


class Household(Base):
    __tablename__ = "households"
    __table_args__ = (
        CheckConstraint("members_count BETWEEN 1 AND 50", name="members_count_range"),
        UniqueConstraint("national_id_hash", name="uq_households_national_id_hash"),
        Index("ix_households_commune", "admin_version", "commune_code"),
        Index("ix_households_province", "admin_version", "province_code"),
    )

    head_name: Mapped[str] = mapped_column(String(120))
    members_count: Mapped[int] = mapped_column(Integer)
    commune_code: Mapped[str] = mapped_column(String(10))
    province_code: Mapped[str] = mapped_column(String(10))
    admin_version: Mapped[str] = mapped_column(String(10), default=ADMIN_VERSION)
    village: Mapped[str] = mapped_column(String(120), default="")
    phone: Mapped[str] = mapped_column(String(10))
    national_id_hash: Mapped[str] = mapped_column(String(64))
    """HMAC-SHA256 of the normalised national ID under settings.security.pii_hmac_key."""
    national_id_encrypted: Mapped[str] = mapped_column(Text)
    """Fernet token under settings.security.pii_encryption_key; shown only to officials."""
    bank_bin: Mapped[str | None] = mapped_column(String(6), default=None)
    bank_account_number: Mapped[str | None] = mapped_column(String(19), default=None)
    bank_account_name: Mapped[str | None] = mapped_column(String(120), default=None)
    farmer_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), unique=True, default=None
    )
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class HouseholdStatusEntry(Base):
    """One commune review: append-only, the audit of who recorded what under which standard."""

    __tablename__ = "household_status_entries"
    __table_args__ = (
        Index("ix_household_status_entries_lookup", "household_id", "review_date"),
        CheckConstraint(
            "income_per_person_month IS NULL OR income_per_person_month >= 0",
            name="income_non_negative",
        ),
        CheckConstraint(
            "deprived_indicators IS NULL OR deprived_indicators >= 0", name="deprived_non_negative"
        ),
    )

    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    review_date: Mapped[date] = mapped_column(Date)
    standard_code: Mapped[str] = mapped_column(String(32))
    decision_number: Mapped[str] = mapped_column(String(64))
    deciding_authority: Mapped[str] = mapped_column(String(160))
    recorded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    income_per_person_month: Mapped[int | None] = mapped_column(BigInteger, default=None)
    deprived_indicators: Mapped[int | None] = mapped_column(Integer, default=None)
    implied_classification: Mapped[str | None] = mapped_column(String(32), default=None)
    """What the numbers imply under the standard; the decision wins, a mismatch is flagged."""
    mismatch: Mapped[bool] = mapped_column(default=False)


class HelperConsent(Base):
    """A household's recorded consent that a helper may act for it (revocable)."""

    __tablename__ = "helper_consents"
    __table_args__ = (
        Index("ix_helper_consents_pair", "household_id", "helper_user_id"),
        # One active consent per household and helper, even under concurrent requests.
        Index(
            "uq_helper_consents_active_pair",
            "household_id",
            "helper_user_id",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    helper_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    granted_at: Mapped[datetime]
    recorded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    evidence: Mapped[str] = mapped_column(Text, default="")
    """How consent was given (signed form number, witnessed at the commune office, ...)."""
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class HelperAction(Base):
    """Every action a helper takes, recorded as taken on behalf of the household."""

    __tablename__ = "helper_actions"
    __table_args__ = (Index("ix_helper_actions_household", "household_id", "created_at"),)

    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    helper_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    consent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("helper_consents.id"))
    action: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class Cooperative(Base):
    __tablename__ = "cooperatives"

    name: Mapped[str] = mapped_column(String(200))
    commune_code: Mapped[str] = mapped_column(String(10))
    province_code: Mapped[str] = mapped_column(String(10))
    admin_version: Mapped[str] = mapped_column(String(10), default=ADMIN_VERSION)
    registration_number: Mapped[str | None] = mapped_column(String(64), default=None)
    description: Mapped[str] = mapped_column(Text, default="")


class CooperativeManager(Base):
    __tablename__ = "cooperative_managers"
    __table_args__ = (UniqueConstraint("cooperative_id", "user_id"),)

    cooperative_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class CooperativeMember(Base):
    """Membership over time: a household may leave and rejoin, so joined/left are dates."""

    __tablename__ = "cooperative_members"
    __table_args__ = (
        CheckConstraint("left_on IS NULL OR left_on >= joined_on", name="left_after_joined"),
        Index("ix_cooperative_members_pair", "cooperative_id", "household_id"),
    )

    cooperative_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="CASCADE")
    )
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    joined_on: Mapped[date] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date, default=None)
