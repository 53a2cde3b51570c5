"""Money in and out: bank credits, card payments, refunds, carrier remittances, the sellers'
ledger and the outbox of settlement events.

Every feed is deduplicated by the sender's own identifier (bank reference, Stripe event id,
the order a carrier remits), held unique here, so a replayed delivery changes nothing. The
sellers' ledger is append-only (a trigger refuses UPDATE and DELETE): balances are sums.
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
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base

SELLER_CHECK = (
    "(seller_kind = 'household' AND household_id IS NOT NULL AND cooperative_id IS NULL) OR "
    "(seller_kind = 'cooperative' AND cooperative_id IS NOT NULL AND household_id IS NULL)"
)


class BankTransactionStatus(StrEnum):
    MATCHED = "matched"
    """Applied to an order (exact, partial or over: see `outcome`)."""
    UNMATCHED = "unmatched"
    """Waiting for an admin: no code, an unknown code, or an order no longer payable."""
    RESOLVED = "resolved"
    """Applied to an order by an admin."""
    DISMISSED = "dismissed"
    """An admin decided it belongs to no order (returned to the sender by hand, ...)."""


class UnmatchedReason(StrEnum):
    NO_CODE = "no_code"
    UNKNOWN_CODE = "unknown_code"
    SEVERAL_CODES = "several_codes"
    ORDER_NOT_PAYABLE = "order_not_payable"


class BankTransactionSource(StrEnum):
    WEBHOOK = "webhook"
    STATEMENT = "statement"


class BankTransaction(Base):
    """One incoming transfer as the bank reported it, whatever became of it."""

    __tablename__ = "bank_transactions"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index(
            "ix_bank_transactions_unmatched",
            "credited_at",
            postgresql_where=text("status = 'unmatched'"),
        ),
    )

    bank_reference: Mapped[str] = mapped_column(String(64), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(String(500))
    credited_at: Mapped[datetime]
    account_number: Mapped[str | None] = mapped_column(String(19), default=None)
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(8), default=None)
    """exact | partial | over, once applied to an order."""
    reason: Mapped[str | None] = mapped_column(String(32), default=None)
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), default=None, index=True
    )
    resolved_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class CardPaymentStatus(StrEnum):
    REQUIRES_PAYMENT = "requires_payment"
    SUCCEEDED = "succeeded"
    SUCCEEDED_LATE = "succeeded_late"
    """The card was charged after the order was cancelled: an admin refunds it."""


class CardPayment(Base):
    """A Stripe PaymentIntent for one order (one per order: its idempotency key is the
    order's, so asking again returns the same intent)."""

    __tablename__ = "card_payments"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), unique=True
    )
    payment_intent_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="vnd")
    status: Mapped[str] = mapped_column(String(24))
    succeeded_at: Mapped[datetime | None] = mapped_column(default=None)


class StripeEvent(Base):
    """Every Stripe event id we accepted: a replay or a concurrent duplicate finds it."""

    __tablename__ = "stripe_events"

    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(32), default="")


class RefundStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    """Asked of Stripe, not confirmed yet; the ledger moves only once it succeeded."""
    FAILED = "failed"


class Refund(Base):
    """Money back to a buyer for goods; reverses the sellers' credit and the attribution."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("order_id", "request_key"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    request_key: Mapped[str] = mapped_column(String(255))
    """The admin's Idempotency-Key, or `stripe:<refund id>` for one made in Stripe itself."""
    amount: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200), default="")
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    requested_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    refunded_at: Mapped[datetime | None] = mapped_column(default=None)


class SettledLine(Base):
    """What one order line settled for: gross, the platform's fee and the seller's net.
    Refunds are split over these, so a full refund reverses exactly what was credited."""

    __tablename__ = "settled_lines"
    __table_args__ = (
        CheckConstraint("fee_amount >= 0 AND fee_amount <= gross_amount", name="fee_within"),
        CheckConstraint("net_amount = gross_amount - fee_amount", name="net_exact"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_lines.id", ondelete="RESTRICT"), unique=True
    )
    fulfilment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("fulfilments.id", ondelete="RESTRICT")
    )
    gross_amount: Mapped[int] = mapped_column(BigInteger)
    fee_bps: Mapped[int] = mapped_column(Integer)
    fee_amount: Mapped[int] = mapped_column(BigInteger)
    net_amount: Mapped[int] = mapped_column(BigInteger)
    settled_at: Mapped[datetime]


class RefundLine(Base):
    __tablename__ = "refund_lines"
    __table_args__ = (
        UniqueConstraint("refund_id", "order_line_id"),
        CheckConstraint("gross_amount > 0 AND net_amount >= 0", name="amounts_valid"),
    )

    refund_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("refunds.id", ondelete="RESTRICT"))
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_lines.id", ondelete="RESTRICT"), index=True
    )
    gross_amount: Mapped[int] = mapped_column(BigInteger)
    net_amount: Mapped[int] = mapped_column(BigInteger)


class LedgerKind(StrEnum):
    SALE = "sale"
    REFUND = "refund"
    PAYOUT = "payout"


class SellerLedgerEntry(Base):
    """Append-only: a credit per settled fulfilment (net of the fee), a debit per refund
    and per payout. A seller's balance is the sum of its rows, never a stored number."""

    __tablename__ = "seller_ledger_entries"
    __table_args__ = (
        CheckConstraint(SELLER_CHECK, name="one_seller"),
        CheckConstraint(
            "(kind = 'sale' AND amount >= 0 AND fulfilment_id IS NOT NULL AND refund_id IS NULL)"
            " OR (kind = 'refund' AND amount <= 0 AND fulfilment_id IS NOT NULL"
            " AND refund_id IS NOT NULL)"
            " OR (kind = 'payout' AND amount < 0 AND payout_id IS NOT NULL AND order_id IS NULL)",
            name="kind_shape",
        ),
        Index(
            "uq_seller_ledger_entries_sale",
            "fulfilment_id",
            unique=True,
            postgresql_where=text("kind = 'sale'"),
        ),
        Index(
            "uq_seller_ledger_entries_refund",
            "refund_id",
            "fulfilment_id",
            unique=True,
            postgresql_where=text("kind = 'refund'"),
        ),
        Index("ix_seller_ledger_entries_household", "household_id", "occurred_at"),
        Index("ix_seller_ledger_entries_cooperative", "cooperative_id", "occurred_at"),
        Index("ix_seller_ledger_entries_order", "order_id"),
    )

    kind: Mapped[str] = mapped_column(String(8))
    seller_kind: Mapped[str] = mapped_column(String(16))
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), default=None
    )
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="RESTRICT"), default=None
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    """Signed đồng for the seller: credits positive, refunds and payouts negative."""
    gross_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), default=None
    )
    fulfilment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("fulfilments.id", ondelete="RESTRICT"), default=None
    )
    refund_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("refunds.id", ondelete="RESTRICT"), default=None
    )
    payout_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payouts.id", ondelete="RESTRICT"), default=None
    )
    occurred_at: Mapped[datetime]


class Payout(Base):
    """Money the platform sent to a seller's bank account, recorded by an admin."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint(SELLER_CHECK, name="one_seller"),
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("reference"),
    )

    seller_kind: Mapped[str] = mapped_column(String(16))
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), default=None
    )
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="RESTRICT"), default=None
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(64))
    """The bank transfer's reference: recording the same payout twice is refused."""
    paid_at: Mapped[datetime]
    recorded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )


class CodRemittance(Base):
    """The carrier handed over the cash of one delivered order (once per order)."""

    __tablename__ = "cod_remittances"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("shortfall_amount >= 0", name="shortfall_non_negative"),
        Index(
            "ix_cod_remittances_shortfall",
            "remitted_on",
            postgresql_where=text("shortfall_amount > 0"),
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), unique=True
    )
    carrier: Mapped[str] = mapped_column(String(64))
    carrier_reference: Mapped[str] = mapped_column(String(64), default="")
    amount: Mapped[int] = mapped_column(BigInteger)
    remitted_on: Mapped[date] = mapped_column(Date)
    shortfall_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    """Total minus what the carrier remitted: owed by the carrier, flagged for an admin."""


class OutboxEvent(Base):
    """A settlement event for the impact ledger, written in the transaction that moved the
    money and delivered after it commits (and again by the beat task until delivered)."""

    __tablename__ = "payment_outbox"
    __table_args__ = (
        Index(
            "ix_payment_outbox_undelivered",
            "created_at",
            postgresql_where=text("delivered_at IS NULL"),
        ),
    )

    kind: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[uuid.UUID] = mapped_column(index=True)
    payload: Mapped[str] = mapped_column(Text)
    """The event as JSON (`marketplace.impact.events.encode_event`); `id` is its event_id."""
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
