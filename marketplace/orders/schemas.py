"""Request and response bodies of orders and fulfilments, and the placement request the
livestream domain hands in for comment orders.

No request carries a price: the server takes it from the catalog or the livestream item.
A request that names one is refused as an unknown field.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import msgspec

from marketplace.orders.models import (
    Fulfilment,
    FulfilmentStatus,
    Order,
    OrderLine,
    OrderSource,
    OrderStatus,
    PaymentMethod,
)

MAX_LINES = 50
MAX_LINE_QUANTITY = 100
"""More than this of one item in one order is a typo or abuse, not a household's shopping."""

Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_LINE_QUANTITY)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=120, examples=["Trần Thị Bích"])]
PhoneText = Annotated[str, msgspec.Meta(min_length=9, max_length=20, examples=["0912 345 678"])]
Address = Annotated[
    str,
    msgspec.Meta(
        min_length=5, max_length=500, examples=["12 Lý Tự Trọng, phường Ninh Kiều, Cần Thơ"]
    ),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class LineRequest:
    variant_id: uuid.UUID | None = None
    livestream_item_id: uuid.UUID | None = None
    quantity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ShippingDetails:
    name: str
    phone: str
    """Normalised `0XXXXXXXXX`."""
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder:
    """What any channel asks for; the service decides prices, sellers and holds."""

    buyer_user_id: uuid.UUID | None
    contact_phone: str | None
    lines: Sequence[LineRequest]
    payment_method: str | None
    """vietqr | cod | card; None when a comment order's buyer chooses it at claim."""
    source: str
    buyer_key: str
    hold_seconds: int | None = None
    shipping: ShippingDetails | None = None
    field_prefix: str = "lines"
    """How error messages name the lines (`lines[0].quantity`)."""


class LineCreate(msgspec.Struct, forbid_unknown_fields=True):
    quantity: Quantity
    variant_id: uuid.UUID | None = None
    livestream_item_id: uuid.UUID | None = None


class ShippingCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    phone: PhoneText
    address: Address


class OrderCreate(msgspec.Struct, forbid_unknown_fields=True):
    lines: Annotated[list[LineCreate], msgspec.Meta(min_length=1, max_length=MAX_LINES)]
    payment_method: PaymentMethod
    shipping: ShippingCreate


class ClaimCreate(msgspec.Struct, forbid_unknown_fields=True):
    payment_method: PaymentMethod
    shipping: ShippingCreate


class ShipmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    carrier: Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["GHTK"])]
    tracking_number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class LineRead(msgspec.Struct):
    id: uuid.UUID
    variant_id: uuid.UUID
    product_id: uuid.UUID
    livestream_item_id: uuid.UUID | None
    product_name: str
    variant_label: str
    quantity: int
    unit_price_amount: int
    line_amount: int


class FulfilmentRead(msgspec.Struct):
    id: uuid.UUID
    order_id: uuid.UUID
    seller_kind: str
    household_id: uuid.UUID | None
    cooperative_id: uuid.UUID | None
    status: FulfilmentStatus
    subtotal_amount: int
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    lines: list[LineRead]


class ShippingRead(msgspec.Struct):
    name: str
    phone: str
    address: str


class OrderRead(msgspec.Struct):
    id: uuid.UUID
    status: OrderStatus
    source: OrderSource
    payment_method: PaymentMethod | None
    payment_code: str | None
    total_amount: int
    paid_amount: int
    amount_due: int
    refunded_amount: int
    excess_amount: int
    hold_expires_at: datetime
    created_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    shipping: ShippingRead | None
    fulfilments: list[FulfilmentRead]


class OrderSummary(msgspec.Struct):
    id: uuid.UUID
    status: OrderStatus
    payment_method: PaymentMethod | None
    total_amount: int
    amount_due: int
    created_at: datetime


class OrderPage(msgspec.Struct):
    items: list[OrderSummary]
    limit: int
    offset: int


class ClaimPreviewRead(msgspec.Struct):
    """What anyone holding the claim code sees: no address, the phone masked."""

    order_id: uuid.UUID
    status: OrderStatus
    total_amount: int
    contact_phone_masked: str | None
    hold_expires_at: datetime
    lines: list[LineRead]


class SellerFulfilmentRead(msgspec.Struct):
    """A seller's view: what to pack and where to send it."""

    fulfilment: FulfilmentRead
    order_status: OrderStatus
    shipping: ShippingRead | None


class SellerFulfilmentPage(msgspec.Struct):
    items: list[SellerFulfilmentRead]
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class OrderDetails:
    """An order with its fulfilments and lines, loaded together."""

    order: Order
    fulfilments: Sequence[Fulfilment]
    lines: Sequence[OrderLine]


def line_read(line: OrderLine) -> LineRead:
    return LineRead(
        id=line.id,
        variant_id=line.variant_id,
        product_id=line.product_id,
        livestream_item_id=line.livestream_item_id,
        product_name=line.product_name,
        variant_label=line.variant_label,
        quantity=line.quantity,
        unit_price_amount=line.unit_price_amount,
        line_amount=line.line_amount,
    )


def fulfilment_read(fulfilment: Fulfilment, lines: Sequence[OrderLine]) -> FulfilmentRead:
    return FulfilmentRead(
        id=fulfilment.id,
        order_id=fulfilment.order_id,
        seller_kind=fulfilment.seller_kind,
        household_id=fulfilment.household_id,
        cooperative_id=fulfilment.cooperative_id,
        status=FulfilmentStatus(fulfilment.status),
        subtotal_amount=fulfilment.subtotal_amount,
        carrier=fulfilment.carrier,
        tracking_number=fulfilment.tracking_number,
        shipped_at=fulfilment.shipped_at,
        delivered_at=fulfilment.delivered_at,
        lines=[line_read(line) for line in lines if line.fulfilment_id == fulfilment.id],
    )


def shipping_read(order: Order) -> ShippingRead | None:
    if order.shipping_name is None or order.shipping_address is None:
        return None
    return ShippingRead(
        name=order.shipping_name,
        phone=order.shipping_phone or "",
        address=order.shipping_address,
    )


def order_read(details: OrderDetails) -> OrderRead:
    order = details.order
    return OrderRead(
        id=order.id,
        status=OrderStatus(order.status),
        source=OrderSource(order.source),
        payment_method=PaymentMethod(order.payment_method) if order.payment_method else None,
        payment_code=order.payment_code,
        total_amount=order.total_amount,
        paid_amount=order.paid_amount,
        amount_due=order.amount_due,
        refunded_amount=order.refunded_amount,
        excess_amount=order.excess_amount,
        hold_expires_at=order.hold_expires_at,
        created_at=order.created_at,
        paid_at=order.paid_at,
        cancelled_at=order.cancelled_at,
        cancel_reason=order.cancel_reason,
        shipping=shipping_read(order),
        fulfilments=[fulfilment_read(f, details.lines) for f in details.fulfilments],
    )


def order_summary(order: Order) -> OrderSummary:
    return OrderSummary(
        id=order.id,
        status=OrderStatus(order.status),
        payment_method=PaymentMethod(order.payment_method) if order.payment_method else None,
        total_amount=order.total_amount,
        amount_due=order.amount_due,
        created_at=order.created_at,
    )
