"""Factories for impact tests: products and lots to sell, and the settlement events payments
sends (`settled(...)`, `refunded(...)`), with realistic Hương Trà fruit and prices."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.catalog.models import Lot, LotContribution, Product, SellerKind
from marketplace.impact.events import PaymentRefunded, PaymentSettled, RefundedLine, SettledLine
from marketplace.sellers.models import Cooperative, Household

SETTLED_AT = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
"""10:00 in Vietnam on 10 March 2026, under the 07/2021 standard."""


async def create_product(
    session: AsyncSession,
    *,
    household: Household | None = None,
    cooperative: Cooperative | None = None,
    name: str = "Cam Xã Đoài",
    category: str = "fruit",
) -> Product:
    owner = household or cooperative
    assert owner is not None
    product = Product(
        seller_kind=SellerKind.HOUSEHOLD.value if household else SellerKind.COOPERATIVE.value,
        household_id=household.id if household else None,
        cooperative_id=cooperative.id if cooperative else None,
        name=name,
        category=category,
        province_code=owner.province_code,
        commune_code=owner.commune_code,
        status="listed",
    )
    session.add(product)
    await session.flush()
    return product


async def create_cooperative_lot(
    session: AsyncSession,
    cooperative: Cooperative,
    product: Product,
    contributions: Sequence[tuple[Household, int]],
    *,
    harvest_date: date = date(2026, 3, 1),
) -> Lot:
    """A cooperative lot with each member's kilograms."""
    lot = Lot(
        product_id=product.id,
        trace_code=f"HT{uuid.uuid4().hex[:10].upper()}",
        harvest_date=harvest_date,
        quantity=sum(q for _, q in contributions) or 1,
        unit="kg",
        seller_kind=SellerKind.COOPERATIVE.value,
        cooperative_id=cooperative.id,
    )
    session.add(lot)
    await session.flush()
    for household, quantity in contributions:
        session.add(LotContribution(lot_id=lot.id, household_id=household.id, quantity=quantity))
    await session.flush()
    return lot


def household_line(
    household: Household,
    product: Product,
    net_amount: int,
    *,
    fee_amount: int = 0,
    category: str | None = None,
) -> SettledLine:
    return SettledLine(
        order_line_id=uuid.uuid4(),
        net_amount=net_amount,
        gross_amount=net_amount + fee_amount,
        fee_amount=fee_amount,
        product_id=product.id,
        category=category or product.category,
        household_id=household.id,
    )


def cooperative_line(
    cooperative: Cooperative, product: Product, lot: Lot, net_amount: int, *, fee_amount: int = 0
) -> SettledLine:
    return SettledLine(
        order_line_id=uuid.uuid4(),
        net_amount=net_amount,
        gross_amount=net_amount + fee_amount,
        fee_amount=fee_amount,
        product_id=product.id,
        category=product.category,
        lot_id=lot.id,
        cooperative_id=cooperative.id,
    )


def settled(
    *lines: SettledLine,
    settled_at: datetime = SETTLED_AT,
    order_id: uuid.UUID | None = None,
    method: str = "vietqr",
) -> PaymentSettled:
    return PaymentSettled(
        event_id=uuid.uuid4(),
        order_id=order_id or uuid.uuid4(),
        settled_at=settled_at,
        method=method,
        lines=tuple(lines),
    )


def refunded(
    sale: PaymentSettled,
    amounts: dict[uuid.UUID, int],
    *,
    refunded_at: datetime | None = None,
) -> PaymentRefunded:
    """A refund of `amounts` (order line id -> đồng of net revenue) of an earlier sale."""
    return PaymentRefunded(
        event_id=uuid.uuid4(),
        order_id=sale.order_id,
        refunded_at=refunded_at or sale.settled_at.replace(day=sale.settled_at.day + 2),
        lines=tuple(RefundedLine(order_line_id=k, net_amount=v) for k, v in amounts.items()),
    )
