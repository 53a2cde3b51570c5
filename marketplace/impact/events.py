"""The settlement events payments records in its outbox and impact consumes.

They are JSON (msgspec) so the outbox row is the durable copy: payments writes the event in
the same transaction that settles the money, a beat task re-delivers undelivered rows, and
impact attributes each event once (unique per event id and order line).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class SettledLine(msgspec.Struct, frozen=True, kw_only=True):
    order_line_id: uuid.UUID
    net_amount: int
    """Đồng the seller keeps for this line after the platform fee (what is attributed)."""
    gross_amount: int
    fee_amount: int
    product_id: uuid.UUID
    category: str
    lot_id: uuid.UUID | None = None
    """The lot sold; a cooperative's line is split among members by their contributions to it."""
    household_id: uuid.UUID | None = None
    cooperative_id: uuid.UUID | None = None


class PaymentSettled(msgspec.Struct, frozen=True, kw_only=True, tag="payment_settled"):
    event_id: uuid.UUID
    order_id: uuid.UUID
    settled_at: datetime
    method: str
    """vietqr | cod | card."""
    lines: tuple[SettledLine, ...]


class RefundedLine(msgspec.Struct, frozen=True, kw_only=True):
    order_line_id: uuid.UUID
    net_amount: int
    """Positive đồng of net revenue reversed for this line (impact appends negative rows)."""


class PaymentRefunded(msgspec.Struct, frozen=True, kw_only=True, tag="payment_refunded"):
    event_id: uuid.UUID
    order_id: uuid.UUID
    refunded_at: datetime
    lines: tuple[RefundedLine, ...]


SettlementEvent = PaymentSettled | PaymentRefunded


def encode_event(event: SettlementEvent) -> bytes:
    return msgspec.json.encode(event)


def decode_event(data: bytes | str) -> SettlementEvent:
    event: SettlementEvent = msgspec.json.decode(data, type=SettlementEvent)
    return event
