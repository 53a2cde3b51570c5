"""The sellers' ledger: credits net of the fee, debits per refund and payout, balances as
sums, append-only; and the outbox that carries settlements to the impact ledger."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.impact.events import PaymentSettled, decode_event
from marketplace.impact.models import AttributionEntry
from marketplace.orders.models import Order, OrderStatus
from marketplace.orders.service import OrderService
from marketplace.payments.models import OutboxEvent, SellerLedgerEntry
from marketplace.payments.outbox import OutboxService
from marketplace.payments.service import PaymentService
from marketplace.sellers.models import Household, PovertyStatus
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import auth_headers, create_user
from tests.orders.factories import catalog_order, create_variant, identity
from tests.payments.factories import fresh, place
from tests.sellers.factories import create_cooperative, create_household


async def pay(payments: PaymentService, order: Order) -> None:
    """As a matched transfer would: the full amount received, then settlement."""
    applied = await payments.orders.record_payment(
        order.id, amount=order.amount_due, paid_at=payments.now()
    )
    assert applied.became_paid
    await payments.settle(order, method="vietqr", at=payments.now())


async def balance(session: AsyncSession, household: Household) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(SellerLedgerEntry.amount), 0)).where(
            SellerLedgerEntry.household_id == household.id
        )
    )
    return int(total or 0)


async def test_an_order_from_two_sellers_credits_each_its_own_net(
    session: AsyncSession, orders: OrderService, payments: PaymentService
) -> None:
    poor = await create_household(session, status=PovertyStatus.POOR)
    better_off = await create_household(session, status=PovertyStatus.NOT_POOR)
    buyer = await create_user(session, role=Role.BUYER)
    cam = await create_variant(session, household=poor, price_amount=180_000)
    buoi = await create_variant(session, household=better_off, price_amount=95_000)
    order = await orders.place_order(catalog_order(buyer, cam, buoi, quantity=3))

    await pay(payments, order)

    assert await balance(session, poor) == 540_000
    assert await balance(session, better_off) == 285_000 - 14_250
    credits = (
        await session.execute(
            select(SellerLedgerEntry).where(SellerLedgerEntry.order_id == order.id)
        )
    ).scalars()
    assert sorted((c.gross_amount, c.fee_amount) for c in credits) == [
        (285_000, 14_250),
        (540_000, 0),
    ]


async def test_the_fee_follows_the_status_on_the_day_of_sale(
    session: AsyncSession, orders: OrderService, payments: PaymentService
) -> None:
    household = await create_household(session, status=None)
    _, order = await place(session, orders, household=household, price_amount=100_000)

    await pay(payments, order)

    assert await balance(session, household) == 95_000


async def test_settling_twice_credits_once(
    session: AsyncSession, orders: OrderService, payments: PaymentService
) -> None:
    household = await create_household(session, status=PovertyStatus.NEAR_POOR)
    _, order = await place(session, orders, household=household, price_amount=100_000)
    await pay(payments, order)

    again = await payments.settle(order, method="vietqr", at=payments.now())

    assert again is None
    assert await balance(session, household) == 100_000


async def test_the_ledger_is_append_only(
    session: AsyncSession, orders: OrderService, payments: PaymentService, uow: UnitOfWork
) -> None:
    household = await create_household(session)
    _, order = await place(session, orders, household=household)
    await pay(payments, order)

    with pytest.raises(DBAPIError, match="append-only"):
        async with uow.session.begin_nested():
            await uow.session.execute(
                update(SellerLedgerEntry)
                .where(SellerLedgerEntry.order_id == order.id)
                .values(amount=1)
            )
    with pytest.raises(DBAPIError, match="append-only"):
        async with uow.session.begin_nested():
            await uow.session.execute(
                text("DELETE FROM seller_ledger_entries WHERE order_id = :id"), {"id": order.id}
            )


async def test_payouts_are_debits_and_cannot_exceed_the_balance(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, payments: PaymentService
) -> None:
    farmer = await create_user(session, role=Role.FARMER)
    household = await create_household(session, status=PovertyStatus.POOR, farmer=farmer)
    _, order = await place(session, orders, household=household, price_amount=180_000)
    await pay(payments, order)
    admin = await auth_headers(session, await create_user(session, role=Role.ADMIN))
    body = {"household_id": str(household.id), "amount": 100_000, "reference": "UNC-0001"}

    paid = await client.post("/api/admin/payments/payouts", json=body, headers=admin)
    again = await client.post("/api/admin/payments/payouts", json=body, headers=admin)
    too_much = await client.post(
        "/api/admin/payments/payouts",
        json={**body, "amount": 80_001, "reference": "UNC-0002"},
        headers=admin,
    )
    ledger = await client.get("/api/ledger", headers=await auth_headers(session, farmer))

    assert paid.status_code == 201, paid.text
    assert paid.json()["balance_after"] == 80_000
    assert again.json()["code"] == "payout_reference_used"
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "payout_exceeds_balance"
    assert ledger.status_code == 200
    assert ledger.json()["balance_amount"] == 80_000
    assert sorted(e["kind"] for e in ledger.json()["entries"]) == ["payout", "sale"]


async def test_a_seller_reads_only_their_own_ledger(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    farmer = await create_user(session, role=Role.FARMER)
    await create_household(session, farmer=farmer)
    other = await create_household(session)
    manager = await create_user(session, role=Role.COOPERATIVE_MANAGER)
    cooperative = await create_cooperative(session, managers=[manager])
    other_cooperative = await create_cooperative(session)
    farmer_headers = await auth_headers(session, farmer)
    manager_headers = await auth_headers(session, manager)

    theirs = await client.get(f"/api/ledger?household_id={other.id}", headers=farmer_headers)
    own_coop = await client.get(
        f"/api/ledger?cooperative_id={cooperative.id}", headers=manager_headers
    )
    other_coop = await client.get(
        f"/api/ledger?cooperative_id={other_cooperative.id}", headers=manager_headers
    )
    buyer = await client.get(
        "/api/ledger", headers=await auth_headers(session, await create_user(session))
    )

    assert theirs.status_code == 403
    assert own_coop.status_code == 200
    assert own_coop.json()["balance_amount"] == 0
    assert other_coop.status_code == 403
    assert buyer.status_code == 403


async def test_settlement_is_delivered_to_the_impact_ledger_once(
    session: AsyncSession,
    orders: OrderService,
    payments: PaymentService,
    uow: UnitOfWork,
    settings: Settings,
) -> None:
    household = await create_household(session, status=PovertyStatus.POOR)
    _, order = await place(session, orders, household=household, price_amount=180_000)
    await pay(payments, order)
    outbox = OutboxService(uow, settings)

    first = await outbox.deliver()
    second = await outbox.deliver()

    row = (
        await session.execute(select(OutboxEvent).where(OutboxEvent.order_id == order.id))
    ).scalar_one()
    event = decode_event(row.payload)
    assert isinstance(event, PaymentSettled)
    assert [line.net_amount for line in event.lines] == [180_000]
    assert event.lines[0].household_id == household.id
    assert row.delivered_at is not None
    assert first.delivered >= 1
    assert second.delivered == 0
    attributed = await session.scalar(
        select(func.sum(AttributionEntry.amount)).where(AttributionEntry.order_id == order.id)
    )
    assert attributed == 180_000


async def test_an_event_impact_cannot_take_stays_in_the_outbox_with_its_error(
    session: AsyncSession,
    orders: OrderService,
    payments: PaymentService,
    uow: UnitOfWork,
    settings: Settings,
) -> None:
    cooperative = await create_cooperative(session)
    buyer = await create_user(session, role=Role.BUYER)
    # A cooperative product with no lot: nobody to split its revenue among yet.
    variant = await create_variant(session, cooperative=cooperative, price_amount=100_000)
    order = await orders.place_order(catalog_order(buyer, variant))
    await pay(payments, order)

    report = await OutboxService(uow, settings).deliver(
        [
            (
                await session.execute(
                    select(OutboxEvent.id).where(OutboxEvent.order_id == order.id)
                )
            ).scalar_one()
        ]
    )

    row = (
        await session.execute(select(OutboxEvent).where(OutboxEvent.order_id == order.id))
    ).scalar_one()
    assert report.failed == 1
    assert row.delivered_at is None
    assert row.attempts == 1
    assert row.last_error is not None


async def test_a_buyer_cannot_cancel_after_paying_but_a_refund_reverses_the_impact(
    session: AsyncSession,
    orders: OrderService,
    payments: PaymentService,
    uow: UnitOfWork,
    settings: Settings,
) -> None:
    household = await create_household(session, status=PovertyStatus.POOR)
    buyer, order = await place(session, orders, household=household, price_amount=180_000)
    await pay(payments, order)
    _, refund, _ = await payments.start_refund(
        order.id,
        amount=180_000,
        request_key="hoan-toan-bo",
        method="vietqr",
        reason="hàng hỏng",
        by=identity(buyer),
    )

    await payments.complete_refund(order, refund, at=payments.now())
    await OutboxService(uow, settings).deliver()

    order = await fresh(session, order)
    assert order.status == OrderStatus.REFUNDED
    assert await balance(session, household) == 0
    attributed = await session.scalar(
        select(func.sum(AttributionEntry.amount)).where(AttributionEntry.order_id == order.id)
    )
    assert attributed == 0
