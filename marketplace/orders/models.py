"""Orders, their per-seller fulfilments, lines, stock holds and idempotency records.

An order's status moves only through its own methods (`order.record_payment(...)`,
`order.cancel(...)`), each refusing a move the state machine does not allow:

    pending_payment -> partially_paid -> paid -> fulfilling -> shipped -> delivered -> completed
    pending_payment -> confirmed (cash on delivery) -> fulfilling -> ... -> delivered -> completed
    pending_payment | partially_paid | confirmed -> cancelled
    paid | fulfilling | shipped | delivered | completed -> refunded (fully refunded)

Prices are copied onto the line when the order is accepted: a later price change or the end
of a flash deal never changes what the buyer owes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base
from marketplace.orders.errors import IllegalTransition


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CONFIRMED = "confirmed"
    """Cash on delivery: accepted without payment; the carrier's remittance pays it."""
    FULFILLING = "fulfilling"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class PaymentMethod(StrEnum):
    VIETQR = "vietqr"
    COD = "cod"
    CARD = "card"


class OrderSource(StrEnum):
    CATALOG = "catalog"
    LIVESTREAM_COMMENT = "livestream_comment"
    LIVESTREAM = "livestream"


class PaymentOutcome(StrEnum):
    """What one incoming payment did to an order."""

    EXACT = "exact"
    PARTIAL = "partial"
    OVER = "over"


class FulfilmentStatus(StrEnum):
    PENDING = "pending"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


_ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset(
        {
            OrderStatus.PARTIALLY_PAID,
            OrderStatus.PAID,
            OrderStatus.CONFIRMED,
            OrderStatus.CANCELLED,
        }
    ),
    OrderStatus.PARTIALLY_PAID: frozenset(
        {OrderStatus.PARTIALLY_PAID, OrderStatus.PAID, OrderStatus.CANCELLED}
    ),
    OrderStatus.PAID: frozenset({OrderStatus.FULFILLING, OrderStatus.REFUNDED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.FULFILLING, OrderStatus.CANCELLED}),
    OrderStatus.FULFILLING: frozenset({OrderStatus.SHIPPED, OrderStatus.REFUNDED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED, OrderStatus.REFUNDED}),
    OrderStatus.DELIVERED: frozenset({OrderStatus.COMPLETED, OrderStatus.REFUNDED}),
    OrderStatus.COMPLETED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

AWAITING_PAYMENT = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PARTIALLY_PAID})
SETTLED = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.FULFILLING,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.COMPLETED,
    }
)
"""Statuses in which the buyer's money (or the carrier's remittance) has settled or, for
cash on delivery, the goods are committed."""


SELLER_CHECK = (
    "(seller_kind = 'household' AND household_id IS NOT NULL AND cooperative_id IS NULL) OR "
    "(seller_kind = 'cooperative' AND cooperative_id IS NOT NULL AND household_id IS NULL)"
)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("total_amount > 0", name="total_positive"),
        CheckConstraint("paid_amount >= 0", name="paid_non_negative"),
        CheckConstraint(
            "refunded_amount >= 0 AND refunded_amount <= paid_amount", name="refund_within_paid"
        ),
        CheckConstraint("excess_amount >= 0", name="excess_non_negative"),
        Index("ix_orders_buyer", "buyer_user_id", "created_at"),
        Index(
            "ix_orders_hold_expiry",
            "hold_expires_at",
            postgresql_where=text("status = 'pending_payment'"),
        ),
    )

    buyer_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    """None for an order taken from a livestream comment until its buyer claims it."""
    buyer_key: Mapped[str] = mapped_column(String(120))
    """Who the per-buyer limits count against: `user:<uuid>` or `<platform>:<author id>`."""
    contact_phone: Mapped[str | None] = mapped_column(String(10), default=None)
    source: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.PENDING_PAYMENT.value)
    payment_method: Mapped[str | None] = mapped_column(String(8), default=None)
    payment_code: Mapped[str | None] = mapped_column(String(12), unique=True, default=None)
    """Short code the buyer writes in the bank transfer description (VietQR orders)."""
    total_amount: Mapped[int] = mapped_column(BigInteger)
    paid_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    excess_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    """Paid beyond the total (an overpaid transfer), owed back to the buyer."""
    hold_expires_at: Mapped[datetime]
    claim_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    livestream_session_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    shipping_name: Mapped[str | None] = mapped_column(String(120), default=None)
    shipping_phone: Mapped[str | None] = mapped_column(String(10), default=None)
    shipping_address: Mapped[str | None] = mapped_column(Text, default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    paid_at: Mapped[datetime | None] = mapped_column(default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    shipped_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    cancel_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    refunded_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def amount_due(self) -> int:
        return max(0, self.total_amount - self.paid_amount)

    @property
    def refundable_amount(self) -> int:
        """Money for goods that can still go back to the buyer; an overpayment's excess is
        returned separately and never touches the sellers' ledger."""
        return min(self.paid_amount, self.total_amount) - self.refunded_amount

    def _move(self, target: OrderStatus, action: str) -> None:
        current = OrderStatus(self.status)
        if target not in _ALLOWED[current]:
            raise IllegalTransition(current.value, action)
        self.status = target.value

    def record_payment(self, amount: int, at: datetime) -> PaymentOutcome:
        """Money in: the order is paid once the total is covered; beyond it is excess."""
        if amount <= 0:
            raise ValueError("a payment amount must be positive")
        paid = self.paid_amount + amount
        if paid < self.total_amount:
            self._move(OrderStatus.PARTIALLY_PAID, "record a partial payment")
            self.paid_amount = paid
            return PaymentOutcome.PARTIAL
        self._move(OrderStatus.PAID, "mark paid")
        self.paid_amount = paid
        self.excess_amount = paid - self.total_amount
        self.paid_at = at
        return PaymentOutcome.OVER if self.excess_amount else PaymentOutcome.EXACT

    def confirm_cash_on_delivery(self, at: datetime) -> None:
        if self.payment_method != PaymentMethod.COD.value:
            raise IllegalTransition(self.status, "confirm cash on delivery for a prepaid order")
        self._move(OrderStatus.CONFIRMED, "confirm cash on delivery")
        self.confirmed_at = at

    def record_cod_remittance(self, amount: int, at: datetime) -> None:
        """The carrier handed over the cash it collected: the delivered order is paid and
        complete. A remittance short of the total is still recorded (and flagged by
        payments); the order cannot be remitted twice."""
        if self.payment_method != PaymentMethod.COD.value:
            raise IllegalTransition(self.status, "record a remittance for a prepaid order")
        if self.paid_at is not None:
            raise IllegalTransition(self.status, "record a second remittance")
        if amount < 0:
            raise ValueError("a remitted amount cannot be negative")
        self._move(OrderStatus.COMPLETED, "record the carrier's remittance")
        self.paid_amount = amount
        self.excess_amount = max(0, amount - self.total_amount)
        self.paid_at = at
        self.completed_at = at

    def cancel(self, at: datetime, reason: str) -> None:
        self._move(OrderStatus.CANCELLED, "cancel")
        self.cancelled_at = at
        self.cancel_reason = reason

    def start_fulfilling(self) -> None:
        self._move(OrderStatus.FULFILLING, "start fulfilling")

    def mark_shipped(self, at: datetime) -> None:
        self._move(OrderStatus.SHIPPED, "mark shipped")
        self.shipped_at = at

    def mark_delivered(self, at: datetime) -> None:
        self._move(OrderStatus.DELIVERED, "mark delivered")
        self.delivered_at = at

    def complete(self, at: datetime) -> None:
        if self.paid_at is None:
            raise IllegalTransition(self.status, "complete an unpaid order")
        self._move(OrderStatus.COMPLETED, "complete")
        self.completed_at = at

    def record_refund(self, amount: int, at: datetime) -> None:
        """Money back for goods; the order is `refunded` once everything paid went back."""
        if amount <= 0:
            raise ValueError("a refund amount must be positive")
        if OrderStatus(self.status) not in SETTLED:
            raise IllegalTransition(self.status, "refund")
        if amount > self.refundable_amount:
            raise IllegalTransition(self.status, f"refund more than {self.refundable_amount}")
        self.refunded_amount += amount
        if self.refundable_amount == 0:
            self._move(OrderStatus.REFUNDED, "refund")
            self.refunded_at = at

    def claim(
        self,
        *,
        buyer_user_id: uuid.UUID,
        name: str,
        phone: str,
        address: str,
        payment_method: PaymentMethod,
        at: datetime,
    ) -> None:
        if self.claimed_at is not None or self.buyer_user_id is not None:
            raise IllegalTransition(self.status, "claim an order that already has its buyer")
        if OrderStatus(self.status) is not OrderStatus.PENDING_PAYMENT:
            raise IllegalTransition(self.status, "claim")
        self.buyer_user_id = buyer_user_id
        self.shipping_name = name
        self.shipping_phone = phone
        self.shipping_address = address
        self.payment_method = payment_method.value
        self.claimed_at = at


class Fulfilment(Base):
    """One seller's part of an order: shipped, tracked and settled on its own."""

    __tablename__ = "fulfilments"
    __table_args__ = (
        CheckConstraint(SELLER_CHECK, name="one_seller"),
        CheckConstraint("subtotal_amount > 0", name="subtotal_positive"),
        Index("ix_fulfilments_household", "household_id", "created_at"),
        Index("ix_fulfilments_cooperative", "cooperative_id", "created_at"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    seller_kind: Mapped[str] = mapped_column(String(16))
    household_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), default=None
    )
    cooperative_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("cooperatives.id", ondelete="RESTRICT"), default=None
    )
    status: Mapped[str] = mapped_column(String(16), default=FulfilmentStatus.PENDING.value)
    subtotal_amount: Mapped[int] = mapped_column(BigInteger)
    carrier: Mapped[str | None] = mapped_column(String(64), default=None)
    tracking_number: Mapped[str | None] = mapped_column(String(64), default=None)
    shipped_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)

    def ship(self, *, carrier: str, tracking_number: str, at: datetime) -> None:
        if FulfilmentStatus(self.status) is not FulfilmentStatus.PENDING:
            raise IllegalTransition(self.status, "ship")
        self.status = FulfilmentStatus.SHIPPED.value
        self.carrier = carrier
        self.tracking_number = tracking_number
        self.shipped_at = at

    def deliver(self, at: datetime) -> None:
        if FulfilmentStatus(self.status) is not FulfilmentStatus.SHIPPED:
            raise IllegalTransition(self.status, "mark delivered")
        self.status = FulfilmentStatus.DELIVERED.value
        self.delivered_at = at

    def cancel(self) -> None:
        if FulfilmentStatus(self.status) is not FulfilmentStatus.PENDING:
            raise IllegalTransition(self.status, "cancel")
        self.status = FulfilmentStatus.CANCELLED.value


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_amount > 0", name="unit_price_positive"),
        CheckConstraint("line_amount = unit_price_amount * quantity", name="line_amount_exact"),
        Index("ix_order_lines_variant", "variant_id"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    fulfilment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("fulfilments.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(SmallInteger)
    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="RESTRICT"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    lot_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("lots.id", ondelete="SET NULL"), default=None
    )
    """The product's latest lot when the order was accepted: a cooperative's revenue is
    split among the members who contributed to it."""
    livestream_item_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    product_name: Mapped[str] = mapped_column(String(200))
    variant_label: Mapped[str] = mapped_column(String(80))
    category: Mapped[str] = mapped_column(String(32))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_amount: Mapped[int] = mapped_column(BigInteger)
    line_amount: Mapped[int] = mapped_column(BigInteger)


class StockHold(Base):
    """Units taken from a variant's `available` for one order line.

    Active while neither released nor sold; `sold_at` when the order is paid (or confirmed
    for cash on delivery); `released_at` when the units went back to `available`. So at any
    moment: initial stock = available + units of holds not released.
    """

    __tablename__ = "stock_holds"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_stock_holds_order", "order_id"),
        Index(
            "ix_stock_holds_expiry",
            "expires_at",
            postgresql_where=text("released_at IS NULL AND sold_at IS NULL"),
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_lines.id", ondelete="CASCADE"), unique=True
    )
    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="RESTRICT"))
    livestream_item_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    buyer_key: Mapped[str] = mapped_column(String(120))
    quantity: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime]
    sold_at: Mapped[datetime | None] = mapped_column(default=None)
    released_at: Mapped[datetime | None] = mapped_column(default=None)


class IdempotencyStatus(StrEnum):
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"


class IdempotencyRecord(Base):
    """The first answer to a request made with an Idempotency-Key, per caller.

    Claimed (`in_flight`) in a transaction of its own before the work starts, so a second
    request with the same key sees it at once; completed in the same transaction as the
    work, so the answer and what it describes commit together.
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("scope", "key"),
        CheckConstraint(
            "status = 'in_flight' OR (response_status IS NOT NULL AND response_body IS NOT NULL)",
            name="completed_has_response",
        ),
        Index("ix_idempotency_records_expires_at", "expires_at"),
    )

    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    """SHA-256 of the method, path and canonical body: same key, other body is refused."""
    status: Mapped[str] = mapped_column(String(16))
    locked_until: Mapped[datetime]
    """A claim older than this was left by a crashed request and may be taken over."""
    expires_at: Mapped[datetime]
    response_status: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    order_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
