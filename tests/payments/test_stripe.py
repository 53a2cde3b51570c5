"""Card payments: the real `stripe` SDK against a local Stripe stand-in, and webhooks signed
exactly as Stripe signs them."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.orders.models import Order, OrderStatus
from marketplace.orders.service import OrderService
from marketplace.payments.models import CardPayment, Refund, SellerLedgerEntry
from tests.accounts.factories import auth_headers, create_user
from tests.payments.conftest import STRIPE_WEBHOOK_SECRET
from tests.payments.factories import STRIPE_WEBHOOK, fresh, place
from tests.payments.stripe_server import FakeStripe, event, signed


async def ledger_total(session: AsyncSession, order: Order) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(SellerLedgerEntry.amount), 0)).where(
            SellerLedgerEntry.order_id == order.id
        )
    )
    return int(total or 0)


async def start_card_payment(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, *, price: int
) -> tuple[Order, dict[str, object]]:
    buyer, order = await place(session, orders, method="card", price_amount=price)
    response = await client.post(
        f"/api/orders/{order.id}/card-payment", headers=await auth_headers(session, buyer)
    )
    assert response.status_code == 200, response.text
    return order, response.json()


async def send(
    client: httpx.AsyncClient, payload: str, *, timestamp: int | None = None
) -> httpx.Response:
    return await client.post(
        STRIPE_WEBHOOK,
        content=payload.encode(),
        headers={
            "Stripe-Signature": signed(payload, STRIPE_WEBHOOK_SECRET, timestamp=timestamp),
            "Content-Type": "application/json",
        },
    )


def succeeded(intent_id: str, amount: int, *, event_id: str | None = None) -> str:
    return event(
        "payment_intent.succeeded",
        {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "currency": "vnd",
            "status": "succeeded",
        },
        event_id=event_id,
    )


async def test_a_payment_intent_is_in_vnd_zero_decimal_with_a_key_from_the_order(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, fake_stripe: FakeStripe
) -> None:
    order, intent = await start_card_payment(session, client, orders, price=180_000)

    [call] = fake_stripe.calls("/v1/payment_intents")
    assert call.params["amount"] == "180000"
    assert call.params["currency"] == "vnd"
    assert call.params["metadata[order_id]"] == str(order.id)
    assert call.idempotency_key == f"order-{order.id}-payment"
    assert intent["amount"] == 180_000
    assert str(intent["client_secret"]).startswith(str(intent["payment_intent_id"]))


async def test_asking_twice_returns_the_same_payment_intent(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, fake_stripe: FakeStripe
) -> None:
    buyer, order = await place(session, orders, method="card")
    headers = await auth_headers(session, buyer)

    first = await client.post(f"/api/orders/{order.id}/card-payment", headers=headers)
    second = await client.post(f"/api/orders/{order.id}/card-payment", headers=headers)

    assert first.json()["payment_intent_id"] == second.json()["payment_intent_id"]
    rows = await session.scalar(
        select(func.count()).select_from(CardPayment).where(CardPayment.order_id == order.id)
    )
    assert rows == 1


async def test_a_bank_transfer_order_cannot_start_a_card_payment(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, fake_stripe: FakeStripe
) -> None:
    buyer, order = await place(session, orders, method="vietqr")

    response = await client.post(
        f"/api/orders/{order.id}/card-payment", headers=await auth_headers(session, buyer)
    )

    assert response.status_code == 409
    assert response.json()["code"] == "not_a_card_order"
    assert fake_stripe.calls("/v1/payment_intents") == []


async def test_a_declined_call_to_stripe_is_a_clear_error_and_records_nothing(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, fake_stripe: FakeStripe
) -> None:
    buyer, order = await place(session, orders, method="card")
    fake_stripe.fail_next = 402

    response = await client.post(
        f"/api/orders/{order.id}/card-payment", headers=await auth_headers(session, buyer)
    )

    assert response.status_code == 502
    assert response.json()["code"] == "card_gateway_refused"
    assert "declined" in response.json()["detail"]


async def test_payment_intent_succeeded_settles_the_order_once(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, fake_stripe: FakeStripe
) -> None:
    order, intent = await start_card_payment(session, client, orders, price=180_000)
    payload = succeeded(str(intent["payment_intent_id"]), 180_000)

    first = await send(client, payload)
    replay = await send(client, payload)

    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "settled"
    assert replay.status_code == 200
    assert replay.json()["outcome"] == "duplicate"
    order = await fresh(session, order)
    assert order.status == OrderStatus.PAID
    assert await ledger_total(session, order) == 171_000


@pytest.mark.parametrize("spoil", ["tampered", "stale", "forged", "unsigned"])
async def test_a_stripe_webhook_that_does_not_verify_changes_nothing(
    session: AsyncSession,
    client: httpx.AsyncClient,
    orders: OrderService,
    fake_stripe: FakeStripe,
    spoil: str,
) -> None:
    order, intent = await start_card_payment(session, client, orders, price=180_000)
    payload = succeeded(str(intent["payment_intent_id"]), 180_000)
    headers = {"Stripe-Signature": signed(payload, STRIPE_WEBHOOK_SECRET)}
    body = payload
    if spoil == "tampered":
        body = payload.replace("180000", "1")
    elif spoil == "stale":
        headers = {
            "Stripe-Signature": signed(
                payload, STRIPE_WEBHOOK_SECRET, timestamp=int(time.time()) - 301
            )
        }
    elif spoil == "forged":
        headers = {"Stripe-Signature": signed(payload, "whsec_someone_else")}
    else:
        headers = {}

    response = await client.post(STRIPE_WEBHOOK, content=body.encode(), headers=headers)

    assert response.status_code == 401
    expected = "stale_timestamp" if spoil == "stale" else "invalid_signature"
    assert response.json()["code"] == expected
    order = await fresh(session, order)
    assert order.status == OrderStatus.PENDING_PAYMENT


async def test_an_unknown_event_type_is_acknowledged_and_ignored(
    client: httpx.AsyncClient, fake_stripe: FakeStripe
) -> None:
    response = await send(client, event("customer.created", {"id": "cus_1", "object": "customer"}))

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"


async def refund(
    client: httpx.AsyncClient, headers: dict[str, str], order: Order, amount: int, key: str
) -> httpx.Response:
    return await client.post(
        f"/api/admin/payments/orders/{order.id}/refunds",
        json={"amount": amount, "reason": "Cam bị dập khi giao"},
        headers={**headers, "Idempotency-Key": key},
    )


async def paid_card_order(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, price: int
) -> Order:
    order, intent = await start_card_payment(session, client, orders, price=price)
    assert (
        await send(client, succeeded(str(intent["payment_intent_id"]), price))
    ).status_code == 200
    return order


async def test_partial_then_full_refunds_go_through_stripe_once_each_and_reverse_the_credit(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, fake_stripe: FakeStripe
) -> None:
    order = await paid_card_order(session, client, orders, 180_000)
    admin = await auth_headers(session, await create_user(session, role=Role.ADMIN))

    partial = await refund(client, admin, order, 33_333, "hoan-1")
    replay = await refund(client, admin, order, 33_333, "hoan-1")
    between = await ledger_total(session, order)
    rest = await refund(client, admin, order, 180_000 - 33_333, "hoan-2")

    assert partial.status_code == 201, partial.text
    assert partial.json()["status"] == "succeeded"
    assert replay.json()["id"] == partial.json()["id"]
    calls = fake_stripe.calls("/v1/refunds")
    assert [c.params["amount"] for c in calls] == ["33333", "146667"]
    assert calls[0].idempotency_key == f"refund-{order.id}-hoan-1"
    assert between == 171_000 - (33_333 * 171_000 // 180_000)
    assert rest.status_code == 201
    order = await fresh(session, order)
    assert order.status == OrderStatus.REFUNDED
    assert await ledger_total(session, order) == 0


async def test_a_refund_larger_than_what_was_paid_is_refused(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, fake_stripe: FakeStripe
) -> None:
    order = await paid_card_order(session, client, orders, 180_000)
    admin = await auth_headers(session, await create_user(session, role=Role.ADMIN))

    response = await refund(client, admin, order, 180_001, uuid.uuid4().hex)

    assert response.status_code == 409
    assert response.json()["code"] == "refund_too_large"
    assert fake_stripe.calls("/v1/refunds") == []


async def test_a_refund_needs_an_idempotency_key(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, fake_stripe: FakeStripe
) -> None:
    order = await paid_card_order(session, client, orders, 180_000)
    admin = await auth_headers(session, await create_user(session, role=Role.ADMIN))

    response = await client.post(
        f"/api/admin/payments/orders/{order.id}/refunds", json={"amount": 1000}, headers=admin
    )

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_required"


async def test_a_refund_made_in_the_stripe_dashboard_is_reversed_from_charge_refunded(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService, fake_stripe: FakeStripe
) -> None:
    order = await paid_card_order(session, client, orders, 180_000)
    payment = (
        await session.execute(select(CardPayment).where(CardPayment.order_id == order.id))
    ).scalar_one()
    charge = {
        "id": "ch_" + uuid.uuid4().hex[:12],
        "object": "charge",
        "payment_intent": payment.payment_intent_id,
        "amount": 180_000,
        "amount_refunded": 60_000,
        "refunded": False,
    }
    payload = event("charge.refunded", charge)

    first = await send(client, payload)
    replay = await send(client, payload)

    assert first.json()["outcome"] == "reversed"
    assert replay.json()["outcome"] == "duplicate"
    refunds = (await session.execute(select(Refund).where(Refund.order_id == order.id))).scalars()
    assert [r.amount for r in refunds] == [60_000]
    order = await fresh(session, order)
    assert order.refunded_amount == 60_000
    assert await ledger_total(session, order) == 171_000 - 57_000


async def test_a_refund_reported_before_the_payment_is_refused_as_not_settled_then_applied(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    order, intent = await start_card_payment(session, client, orders, price=180_000)
    intent_id = str(intent["payment_intent_id"])
    charge = {
        "id": "ch_" + uuid.uuid4().hex[:12],
        "object": "charge",
        "payment_intent": intent_id,
        "amount": 180_000,
        "amount_refunded": 60_000,
        "refunded": False,
    }
    payload = event("charge.refunded", charge)

    early = await send(client, payload)
    paid = await send(client, succeeded(intent_id, 180_000))
    redelivered = await send(client, payload)

    assert early.status_code == 409
    problem = early.json()
    assert problem["code"] == "payment_not_settled"
    assert intent_id in problem["detail"]
    assert "payment_intent.succeeded" in problem["detail"]
    assert paid.json()["outcome"] == "settled"
    assert redelivered.status_code == 200, redelivered.text
    assert redelivered.json()["outcome"] == "reversed"
    order = await fresh(session, order)
    assert order.refunded_amount == 60_000
    assert await ledger_total(session, order) == 171_000 - 57_000
