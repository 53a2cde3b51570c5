"""Livestream sessions, their pinned items and flash deals, comments and the host's queue,
host verification, complaints, follows and the reminders sent for them.

A session moves draft -> scheduled -> live -> ended, or to cancelled from draft or scheduled;
each move is a method here that refuses an illegal one. A pinned item holds its own stock:
pinning moves the stock cap out of the variant, reservations take from the item, and the
unsold remainder goes back to the variant when the item is unpinned or the session closes.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.catalog.models import MAX_PRICE_AMOUNT
from marketplace.db import Base
from marketplace.livestreams.errors import (
    ComplaintClosed,
    SessionNotCancellable,
    SessionNotDraft,
    SessionNotEditable,
    SessionNotLive,
    SessionNotScheduled,
    VerificationAlreadyReviewed,
)

DEFAULT_HOLD_SECONDS = 15 * 60
MIN_HOLD_SECONDS = 60
MAX_HOLD_SECONDS = 2 * 3600
MAX_CODE_LENGTH = 8
MAX_PER_BUYER_LIMIT = 20
"""No buyer takes more than this many units of one item in one session: a livestream sells
to many people, not to one reseller."""
MAX_STOCK_CAP = 100_000
MIN_COUNTDOWN, MAX_COUNTDOWN = 10, 300
"""A flash deal's countdown, in seconds."""
MIN_DURATION, MAX_DURATION = 60, 20 * 60
"""A flash deal's duration, in seconds (1 to 20 minutes)."""

CODE_PATTERN = re.compile(r"^[A-Z]+[0-9]+$")
"""An item code as stored: ASCII letters then digits, upper case (so uniqueness in the
session is case-insensitive by construction)."""


class Platform(StrEnum):
    FACEBOOK = "facebook"
    TIKTOK = "tiktok"
    YOUTUBE = "youtube"
    ZALO = "zalo"
    OWN = "own"


class SessionStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"


class DocumentKind(StrEnum):
    CITIZEN_ID = "citizen_id"
    """Căn cước công dân."""
    PASSPORT = "passport"


class VerificationStatus(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class ComplaintStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


class EntryStatus(StrEnum):
    """The outcome of one code of one comment, as the host's live queue shows it."""

    HELD = "held"
    """An order holds the stock until the buyer claims and pays it, or the hold expires."""
    ACCEPTED_PENDING_ORDERS = "accepted_pending_orders"
    """Parsed and valid, but order placement did not exist yet: no stock is held."""
    SOLD_OUT = "sold_out"
    LIMIT_REACHED = "limit_reached"
    UNKNOWN_CODE = "unknown_code"
    ITEM_UNPINNED = "item_unpinned"
    SESSION_NOT_LIVE = "session_not_live"
    NEEDS_PHONE = "needs_phone"
    """No phone in the comment nor in an earlier comment of the author: nobody to send the
    claim link to."""
    ORDER_FAILED = "order_failed"
    CANCELLED = "cancelled"
    """A held order the buyer cancelled by comment."""
    RELEASED = "released"
    """A cancel comment that released the author's held items for the code."""
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    REJECTED = "rejected"
    """The host refused it by hand."""


FAILED_STATUSES = frozenset(
    {
        EntryStatus.ACCEPTED_PENDING_ORDERS,
        EntryStatus.SOLD_OUT,
        EntryStatus.LIMIT_REACHED,
        EntryStatus.UNKNOWN_CODE,
        EntryStatus.ITEM_UNPINNED,
        EntryStatus.NEEDS_PHONE,
        EntryStatus.ORDER_FAILED,
    }
)
"""Order entries the host may edit and accept by hand, or reject."""


def _values(enum: type[StrEnum]) -> str:
    return ", ".join(f"'{member.value}'" for member in enum)


class LiveSession(Base):
    __tablename__ = "livestream_sessions"
    __table_args__ = (
        CheckConstraint("scheduled_end_at > scheduled_start_at", name="end_after_start"),
        CheckConstraint(f"status IN ({_values(SessionStatus)})", name="status_known"),
        CheckConstraint(f"platform IN ({_values(Platform)})", name="platform_known"),
        CheckConstraint(
            f"hold_seconds BETWEEN {MIN_HOLD_SECONDS} AND {MAX_HOLD_SECONDS}",
            name="hold_seconds_range",
        ),
        Index("ix_livestream_sessions_upcoming", "status", "scheduled_start_at"),
    )

    host_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.DRAFT.value)
    scheduled_start_at: Mapped[datetime]
    scheduled_end_at: Mapped[datetime]
    rules_text: Mapped[str] = mapped_column(Text, default="")
    """The session's livestream rules, published with it as the law requires."""
    hold_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_HOLD_SECONDS)
    """How long a comment order holds stock before it is released unclaimed."""
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    connector_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    """SHA-256 of the token a platform connector posts comments with; one per session."""

    @property
    def state(self) -> SessionStatus:
        return SessionStatus(self.status)

    @property
    def is_open_for_items(self) -> bool:
        return self.state in (SessionStatus.DRAFT, SessionStatus.SCHEDULED, SessionStatus.LIVE)

    def ensure_editable(self) -> None:
        if self.state not in (SessionStatus.DRAFT, SessionStatus.SCHEDULED):
            raise SessionNotEditable(f"the session is {self.status}")

    def ensure_live(self) -> None:
        if self.state is not SessionStatus.LIVE:
            raise SessionNotLive(f"the session is {self.status}")

    def schedule(self, now: datetime) -> None:
        if self.state is not SessionStatus.DRAFT:
            raise SessionNotDraft(f"the session is {self.status}")
        self.status = SessionStatus.SCHEDULED.value
        self.scheduled_at = now

    def go_live(self, now: datetime) -> None:
        if self.state is not SessionStatus.SCHEDULED:
            raise SessionNotScheduled(f"the session is {self.status}")
        self.status = SessionStatus.LIVE.value
        self.started_at = now

    def end(self, now: datetime) -> None:
        self.ensure_live()
        self.status = SessionStatus.ENDED.value
        self.ended_at = now

    def cancel(self, now: datetime) -> None:
        if self.state not in (SessionStatus.DRAFT, SessionStatus.SCHEDULED):
            raise SessionNotCancellable(f"the session is {self.status}")
        self.status = SessionStatus.CANCELLED.value
        self.cancelled_at = now


class SessionSeller(Base):
    """Whose goods a session sells: one cooperative, or one or more households."""

    __tablename__ = "livestream_session_sellers"
    __table_args__ = (
        CheckConstraint("(household_id IS NULL) <> (cooperative_id IS NULL)", name="one_seller"),
        UniqueConstraint("session_id", "household_id"),
        UniqueConstraint("session_id", "cooperative_id"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_sessions.id", ondelete="CASCADE")
    )
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), default=None, index=True
    )
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="RESTRICT"), default=None, index=True
    )


class LiveItem(Base):
    """A variant pinned in a session under a short code, with its own stock counter.

    `available` is what comment orders can still take: the stock cap moved out of the
    variant at pinning, less what is held or sold. It never goes below zero (CHECK) and is
    only changed by single atomic statements.
    """

    __tablename__ = "livestream_items"
    __table_args__ = (
        UniqueConstraint("session_id", "code"),
        CheckConstraint(
            f"code ~ '^[A-Z]+[0-9]+$' AND char_length(code) <= {MAX_CODE_LENGTH}",
            name="code_shape",
        ),
        CheckConstraint(
            f"live_price_amount > 0 AND live_price_amount <= {MAX_PRICE_AMOUNT}",
            name="live_price_range",
        ),
        CheckConstraint(f"stock_cap BETWEEN 1 AND {MAX_STOCK_CAP}", name="stock_cap_range"),
        CheckConstraint("available >= 0 AND available <= stock_cap", name="available_range"),
        CheckConstraint(
            f"per_buyer_limit BETWEEN 1 AND {MAX_PER_BUYER_LIMIT}", name="per_buyer_limit_range"
        ),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_sessions.id", ondelete="CASCADE"), index=True
    )
    variant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("variants.id", ondelete="RESTRICT"), index=True
    )
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), default=None
    )
    """The product's seller at pinning, for revenue by household in the session report."""
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="RESTRICT"), default=None
    )
    code: Mapped[str] = mapped_column(String(MAX_CODE_LENGTH))
    title: Mapped[str] = mapped_column(String(300))
    live_price_amount: Mapped[int] = mapped_column(BigInteger)
    stock_cap: Mapped[int] = mapped_column(Integer)
    available: Mapped[int] = mapped_column(Integer)
    per_buyer_limit: Mapped[int] = mapped_column(Integer)
    pinned_at: Mapped[datetime]
    unpinned_at: Mapped[datetime | None] = mapped_column(default=None)
    sold_out_at: Mapped[datetime | None] = mapped_column(default=None)
    """The first moment nothing was left, for the session report."""

    @property
    def is_pinned(self) -> bool:
        return self.unpinned_at is None


class FlashDeal(Base):
    """A lower price that starts after a countdown and lasts a while; the server's clock
    alone decides whether it applies."""

    __tablename__ = "livestream_flash_deals"
    __table_args__ = (
        CheckConstraint(
            f"price_amount > 0 AND price_amount <= {MAX_PRICE_AMOUNT}", name="price_range"
        ),
        CheckConstraint(
            f"countdown_seconds BETWEEN {MIN_COUNTDOWN} AND {MAX_COUNTDOWN}",
            name="countdown_range",
        ),
        CheckConstraint(
            f"duration_seconds BETWEEN {MIN_DURATION} AND {MAX_DURATION}",
            name="duration_range",
        ),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_livestream_flash_deals_item_window", "item_id", "starts_at", "ends_at"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_sessions.id", ondelete="CASCADE"), index=True
    )
    item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_items.id", ondelete="CASCADE")
    )
    price_amount: Mapped[int] = mapped_column(BigInteger)
    countdown_seconds: Mapped[int] = mapped_column(Integer)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)

    def applies_at(self, now: datetime) -> bool:
        return self.cancelled_at is None and self.starts_at <= now < self.ends_at

    def is_over(self, now: datetime) -> bool:
        return self.cancelled_at is not None or now >= self.ends_at


class BuyerCount(Base):
    """Units of an item one buyer holds or bought in the session: the per-buyer limit is a
    conditional upsert on this row, so two comments at once cannot both pass the limit."""

    __tablename__ = "livestream_buyer_counts"
    __table_args__ = (
        UniqueConstraint("item_id", "buyer_key"),
        CheckConstraint("quantity >= 0", name="quantity_non_negative"),
    )

    item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_items.id", ondelete="CASCADE")
    )
    buyer_key: Mapped[str] = mapped_column(String(200))
    """`<platform>:<author platform id>` for comment orders, the orders domain's key else."""
    quantity: Mapped[int] = mapped_column(Integer)


class Comment(Base):
    """A comment as a platform connector delivered it; (platform, external id) is unique, so
    a connector retrying a delivery creates nothing new."""

    __tablename__ = "livestream_comments"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        Index("ix_livestream_comments_feed", "session_id", "seq"),
        Index("ix_livestream_comments_author", "session_id", "author_platform_id"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)
    """Arrival order across the whole table: the feed and the host's queue read in it."""
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_sessions.id", ondelete="CASCADE")
    )
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    author_platform_id: Mapped[str] = mapped_column(String(128))
    author_display_name: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    public_text: Mapped[str] = mapped_column(Text)
    """The text with every phone number masked: what the public feed shows."""
    commented_at: Mapped[datetime]
    intent: Mapped[str] = mapped_column(String(8))
    phone: Mapped[str | None] = mapped_column(String(10), default=None)
    parsed_items: Mapped[list[list[object]]] = mapped_column(JSONB, default=list)


class QueueEntry(Base):
    """One code of one order or cancel comment, and what became of it: the host's live
    queue, in comment arrival order."""

    __tablename__ = "livestream_queue_entries"
    __table_args__ = (
        UniqueConstraint("comment_id", "position"),
        Index("ix_livestream_queue_entries_buyer", "session_id", "buyer_key", "item_id"),
        Index("ix_livestream_queue_entries_order", "order_id"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_sessions.id", ondelete="CASCADE"), index=True
    )
    comment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_comments.id", ondelete="CASCADE")
    )
    comment_seq: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(SmallInteger)
    intent: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("livestream_items.id", ondelete="CASCADE"), default=None
    )
    code: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int | None] = mapped_column(Integer, default=None)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300), default="")
    buyer_key: Mapped[str] = mapped_column(String(200))
    buyer_display_name: Mapped[str] = mapped_column(String(120))
    contact_phone: Mapped[str | None] = mapped_column(String(10), default=None)
    order_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    """The orders domain's order; no foreign key, so this domain migrates on its own."""
    unit_price_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    handled_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    handled_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def state(self) -> EntryStatus:
        return EntryStatus(self.status)


class HostVerification(Base):
    """A host's identity document, reviewed by an admin who is recorded with the time.

    The document itself stays with the document store: this row keeps its kind and a
    reference to it, never the ID number. One submission waits for review at a time.
    """

    __tablename__ = "host_verifications"
    __table_args__ = (
        CheckConstraint(f"status IN ({_values(VerificationStatus)})", name="status_known"),
        CheckConstraint(
            "(status = 'submitted') = (reviewed_at IS NULL AND reviewed_by_user_id IS NULL)",
            name="reviewed_when_decided",
        ),
        Index(
            "uq_host_verifications_one_pending",
            "host_user_id",
            unique=True,
            postgresql_where=text("status = 'submitted'"),
        ),
    )

    host_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    document_kind: Mapped[str] = mapped_column(String(16))
    document_reference: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=VerificationStatus.SUBMITTED.value)
    submitted_at: Mapped[datetime]
    reviewed_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    reviewed_at: Mapped[datetime | None] = mapped_column(default=None)
    review_note: Mapped[str] = mapped_column(Text, default="")

    def _review(self, status: VerificationStatus, by: uuid.UUID, now: datetime, note: str) -> None:
        if self.status != VerificationStatus.SUBMITTED:
            raise VerificationAlreadyReviewed(f"it was {self.status}")
        self.status = status.value
        self.reviewed_by_user_id = by
        self.reviewed_at = now
        self.review_note = note

    def approve(self, by: uuid.UUID, now: datetime, note: str = "") -> None:
        self._review(VerificationStatus.APPROVED, by, now, note)

    def reject(self, by: uuid.UUID, now: datetime, note: str) -> None:
        self._review(VerificationStatus.REJECTED, by, now, note)


class Complaint(Base):
    __tablename__ = "livestream_complaints"
    __table_args__ = (
        CheckConstraint(f"status IN ({_values(ComplaintStatus)})", name="status_known"),
        Index("ix_livestream_complaints_status", "status", "created_at"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_sessions.id", ondelete="CASCADE"), index=True
    )
    complainant_user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ComplaintStatus.OPEN.value)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    answered_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    closed_at: Mapped[datetime | None] = mapped_column(default=None)

    def give_answer(self, by: uuid.UUID, answer: str, now: datetime) -> None:
        """An answer may be revised until the complaint is closed."""
        if self.status == ComplaintStatus.CLOSED:
            raise ComplaintClosed()
        self.status = ComplaintStatus.ANSWERED.value
        self.answer = answer
        self.answered_by_user_id = by
        self.answered_at = now

    def close(self, by: uuid.UUID, now: datetime) -> None:
        if self.status == ComplaintStatus.CLOSED:
            raise ComplaintClosed()
        self.status = ComplaintStatus.CLOSED.value
        self.closed_by_user_id = by
        self.closed_at = now


class Follow(Base):
    """A user following a household or a cooperative, to hear of its sessions."""

    __tablename__ = "follows"
    __table_args__ = (
        CheckConstraint("(household_id IS NULL) <> (cooperative_id IS NULL)", name="one_target"),
        UniqueConstraint("user_id", "household_id"),
        UniqueConstraint("user_id", "cooperative_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), default=None, index=True
    )
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="CASCADE"), default=None, index=True
    )


REMINDER_LEAD = timedelta(minutes=15)


class Reminder(Base):
    """The record that a follower was reminded of a session: unique per (session, user), so
    a reminder goes out once however often the sweep runs. It is also the follower's
    in-app notification."""

    __tablename__ = "livestream_reminders"
    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("livestream_sessions.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    sent_at: Mapped[datetime]
