"""Cash on delivery: confirmed without payment, paid by the carrier's remittance report."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.orders.models import Order, OrderStatus
from marketplace.orders.service import OrderService
from marketplace.payments.models import SellerLedgerEntry
from tests.accounts.factories import auth_headers, create_user
from tests.orders.factories import identity
from tests.payments.factories import fresh, place

URL = "/api/admin/payments/cod-remittances"


async def delivered(session: AsyncSession, orders: OrderService, order: Order) -> None:
    """The seller ships and the carrier delivers (as an admin acting for the seller)."""
    admin = identity(await create_user(session, role=Role.ADMIN))
    details = await orders.details(order)
    for fulfilment in details.fulfilments:
        await orders.ship(admin, fulfilment.id, carrier="GHTK", tracking_number="S1234567")
        await orders.deliver(admin, fulfilment.id)


async def ledger_total(session: AsyncSession, order: Order) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(SellerLedgerEntry.amount), 0)).where(
            SellerLedgerEntry.order_id == order.id
        )
    )
    return int(total or 0)


def report(*rows: tuple[object, str, str]) -> bytes:
    lines = ["order_id,amount,remitted_on,carrier,carrier_reference"]
    lines += [
        f"{order_id},{amount},{day},GHTK,RM-{i}" for i, (order_id, amount, day) in enumerate(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


async def admin_headers(session: AsyncSession) -> dict[str, str]:
    headers = await auth_headers(session, await create_user(session, role=Role.ADMIN))
    return {**headers, "Content-Type": "text/csv"}


async def test_a_cash_on_delivery_order_ships_without_payment(
    session: AsyncSession, orders: OrderService
) -> None:
    _, order = await place(session, orders, method="cod")

    await delivered(session, orders, order)

    order = await fresh(session, order)
    assert order.status == OrderStatus.DELIVERED
    assert order.paid_at is None
    assert await ledger_total(session, order) == 0


async def test_the_remittance_pays_delivered_orders_once_and_credits_the_seller(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, method="cod", price_amount=180_000)
    await delivered(session, orders, order)
    headers = await admin_headers(session)
    csv = report((order.id, "180.000", "2026-11-20"))

    first = await client.post(URL, content=csv, headers=headers)
    second = await client.post(URL, content=csv, headers=headers)

    assert first.status_code == 200, first.text
    assert (first.json()["imported"], first.json()["errors"]) == (1, [])
    assert (second.json()["imported"], second.json()["duplicates"]) == (0, 1)
    order = await fresh(session, order)
    assert order.status == OrderStatus.COMPLETED
    assert order.paid_amount == 180_000
    assert order.paid_at is not None
    assert order.paid_at.isoformat().startswith("2026-11-19T17:00")
    assert await ledger_total(session, order) == 171_000


async def test_a_remittance_short_of_the_total_is_flagged(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, order = await place(session, orders, method="cod", price_amount=180_000)
    await delivered(session, orders, order)
    headers = await admin_headers(session)

    response = await client.post(
        URL, content=report((order.id, "150000", "2026-11-20")), headers=headers
    )
    listed = await client.get("/api/admin/payments/cod-shortfalls", headers=headers)

    [shortfall] = response.json()["shortfalls"]
    assert shortfall["shortfall_amount"] == 30_000
    assert str(order.id) in [item["order_id"] for item in listed.json()["items"]]
    order = await fresh(session, order)
    assert order.paid_amount == 150_000


async def test_rows_for_undelivered_or_prepaid_orders_are_reported_by_line(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    _, undelivered = await place(session, orders, method="cod")
    _, prepaid = await place(session, orders, method="vietqr")
    _, good = await place(session, orders, method="cod", price_amount=60_000)
    await delivered(session, orders, good)

    response = await client.post(
        URL,
        content=report(
            (undelivered.id, "180000", "2026-11-20"),
            (prepaid.id, "180000", "2026-11-20"),
            ("khong-phai-ma", "1", "2026-11-20"),
            (good.id, "60000", "20/11/2026"),
            (good.id, "60000", "2026-11-20"),
        ),
        headers=await admin_headers(session),
    )

    body = response.json()
    assert body["imported"] == 1
    assert [e["line"] for e in body["errors"]] == [2, 3, 4, 5]
    assert "confirmed" in body["errors"][0]["message"]
    assert "not cash on delivery" in body["errors"][1]["message"]
    assert (await fresh(session, undelivered)).status == OrderStatus.CONFIRMED
    assert (await fresh(session, good)).status == OrderStatus.COMPLETED
