"""Bank and Stripe webhooks delivered twice at once, out of order and with events nobody
knows, through an app that really commits: each delivery is applied exactly once or
refused, and afterwards the sellers' ledger, the payments and the attribution ledger agree
to the đồng (the nightly reconciliation finds nothing to report for these orders).

Signature, tampering and staleness of single deliveries are covered by
tests/payments/test_bank.py and test_stripe.py; here they are replayed concurrently."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.accounts.models import Role
from marketplace.db import create_sessionmaker
from marketplace.impact.models import AttributionEntry
from marketplace.impact.reconciliation import reconcile_attribution
from marketplace.orders.models import Order, OrderStatus
from marketplace.payments.models import OutboxEvent, SellerLedgerEntry
from marketplace.payments.outbox import OutboxService
from marketplace.payments.service import PaymentService
from marketplace.sellers.models import PovertyStatus
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import auth_headers, create_user
from tests.orders.factories import catalog_order, create_variant
from tests.payments.conftest import STRIPE_WEBHOOK_SECRET
from tests.payments.factories import BANK_WEBHOOK, STRIPE_WEBHOOK, bank_headers, feed, transfer
from tests.payments.stripe_server import FakeStripe, event, signed
from tests.sellers.factories import PHONG_DIEN, create_household
from tests.support.jobs import RecordingSender

pytestmark = pytest.mark.concurrency

PRICE = 180_000
COPIES = 6


@dataclass
class Committed:
    maker: async_sessionmaker[AsyncSession]
    settings: Settings
    redis: Redis
    orders: list[uuid.UUID] = field(default_factory=list)
    households: list[uuid.UUID] = field(default_factory=list)
    users: list[uuid.UUID] = field(default_factory=list)
    stripe_events: list[str] = field(default_factory=list)
    bank_references: list[str] = field(default_factory=list)


@pytest.fixture
async def committed(
    engine: AsyncEngine, settings: Settings, redis: Redis
) -> AsyncIterator[Committed]:
    """Real commits; afterwards every row these tests made is removed, the append-only
    ledgers' guards lifted for that transaction only (each run has its own database)."""
    state = Committed(create_sessionmaker(engine), settings, redis)
    yield state
    ids = {
        "orders": state.orders,
        "households": state.households,
        "users": state.users,
        "events": state.stripe_events,
        "refs": state.bank_references,
        "commune": PHONG_DIEN,
    }
    statements = (
        "SET LOCAL marketplace.ledger_maintenance = 'on'",
        "ALTER TABLE seller_ledger_entries DISABLE TRIGGER seller_ledger_entries_append_only",
        "DELETE FROM attribution_events WHERE order_id = ANY(:orders)",
        "DELETE FROM attribution_entries WHERE order_id = ANY(:orders)",
        "DELETE FROM household_month_impact WHERE household_id = ANY(:households)",
        "DELETE FROM area_month_impact WHERE code IN (:commune, '92')",
        "DELETE FROM payment_outbox WHERE order_id = ANY(:orders)",
        "DELETE FROM seller_ledger_entries WHERE order_id = ANY(:orders)",
        "DELETE FROM refund_lines WHERE refund_id IN "
        "(SELECT id FROM refunds WHERE order_id = ANY(:orders))",
        "DELETE FROM refunds WHERE order_id = ANY(:orders)",
        "DELETE FROM settled_lines WHERE order_id = ANY(:orders)",
        "DELETE FROM card_payments WHERE order_id = ANY(:orders)",
        "DELETE FROM stripe_events WHERE event_id = ANY(:events)",
        "DELETE FROM bank_transactions WHERE bank_reference = ANY(:refs)",
        "DELETE FROM orders WHERE id = ANY(:orders)",
        "DELETE FROM products WHERE household_id = ANY(:households)",
        "DELETE FROM household_status_entries WHERE household_id = ANY(:households)",
        "DELETE FROM households WHERE id = ANY(:households)",
        "DELETE FROM users WHERE id = ANY(:users)",
        "ALTER TABLE seller_ledger_entries ENABLE TRIGGER seller_ledger_entries_append_only",
    )
    async with state.maker() as session, session.begin():
        for statement in statements:
            await session.execute(text(statement), ids)


async def place(committed: Committed, method: str) -> tuple[uuid.UUID, str, dict[str, str]]:
    """A committed order of one line from a poor household (no fee: net = gross), with its
    payment code and its buyer's headers."""
    async with committed.maker() as session:
        household = await create_household(
            session, status=PovertyStatus.POOR, commune_code=PHONG_DIEN
        )
        variant = await create_variant(session, household=household, price_amount=PRICE)
        buyer = await create_user(session, role=Role.BUYER)
        await session.commit()
        headers = await auth_headers(session, buyer)
        await session.commit()
    committed.households.append(household.id)
    committed.users.append(buyer.id)
    async with UnitOfWork(committed.maker, RecordingSender()) as uow:
        service = PaymentService(uow, committed.settings, committed.redis)
        order = await service.orders.place_order(
            catalog_order(buyer, variant, payment_method=method)
        )
        await uow.commit()
    committed.orders.append(order.id)
    return order.id, str(order.payment_code), headers


@dataclass(frozen=True)
class Books:
    status: str
    paid: int
    refunded: int
    seller_ledger: int
    attributed: int
    reconcile_mismatches: int


async def books_after_delivery(committed: Committed, order_id: uuid.UUID) -> Books:
    """Deliver the order's outbox to impact (as the worker would), run the nightly
    reconciliation, and read the three books for the order."""
    async with UnitOfWork(committed.maker, RecordingSender()) as uow:
        event_ids = (
            await uow.session.scalars(
                select(OutboxEvent.id).where(OutboxEvent.order_id == order_id)
            )
        ).all()
        report = await OutboxService(uow, committed.settings).deliver(list(event_ids))
        await uow.commit()
    assert report.failed == 0
    async with UnitOfWork(committed.maker, RecordingSender()) as uow:
        reconciled = await reconcile_attribution(uow, committed.settings, committed.redis)
        totals = await PaymentService(
            uow, committed.settings, committed.redis
        ).ledger_totals_by_order()
    async with committed.maker() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        ledger = await session.scalar(
            select(func.coalesce(func.sum(SellerLedgerEntry.amount), 0)).where(
                SellerLedgerEntry.order_id == order_id
            )
        )
        attributed = await session.scalar(
            select(func.coalesce(func.sum(AttributionEntry.amount), 0)).where(
                AttributionEntry.order_id == order_id
            )
        )
    assert totals.get(order_id, 0) == ledger
    return Books(
        status=order.status,
        paid=order.paid_amount,
        refunded=order.refunded_amount,
        seller_ledger=int(ledger or 0),
        attributed=int(attributed or 0),
        reconcile_mismatches=sum(m.order_id == order_id for m in reconciled.mismatches),
    )


async def post_bank(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post(BANK_WEBHOOK, content=body, headers=bank_headers(body))


async def post_stripe(client: httpx.AsyncClient, payload: str) -> httpx.Response:
    return await client.post(
        STRIPE_WEBHOOK,
        content=payload.encode(),
        headers={
            "Stripe-Signature": signed(payload, STRIPE_WEBHOOK_SECRET),
            "Content-Type": "application/json",
        },
    )


def outcomes(responses: list[httpx.Response]) -> Counter[str]:
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    return Counter(r.json()["outcome"] for r in responses)


async def test_bank_credits_delivered_out_of_order_and_many_times_at_once_count_once_each(
    committed: Committed, committing_client: httpx.AsyncClient
) -> None:
    order_id, code, _ = await place(committed, "vietqr")
    now = datetime.now(UTC)
    early = transfer(code, 100_000, credited_at=now - timedelta(minutes=10))
    late = transfer(code, PRICE - 100_000, credited_at=now)
    committed.bank_references += [str(early["reference"]), str(late["reference"])]
    # The later credit first, then each credit delivered COPIES times, all at once, among
    # copies tampered with after signing and copies whose signature has gone stale.
    bodies = [feed(late), feed(early)] * COPIES
    signed_body = feed(late)
    tampered = (
        signed_body.replace(b'"amount": 80000', b'"amount": 90000'),
        bank_headers(signed_body),
    )
    assert tampered[0] != signed_body
    stale = (signed_body, bank_headers(signed_body, timestamp=int(time.time()) - 301))
    forged = [tampered, stale] * 3

    responses, refused = await asyncio.gather(
        asyncio.gather(*(post_bank(committing_client, body) for body in bodies)),
        asyncio.gather(
            *(
                committing_client.post(BANK_WEBHOOK, content=body, headers=headers)
                for body, headers in forged
            )
        ),
    )

    assert Counter((r.status_code, r.json()["code"]) for r in refused) == {
        (401, "invalid_signature"): 3,
        (401, "stale_timestamp"): 3,
    }
    results = [r.json()["results"][0] for r in responses if r.status_code == 200]
    assert len(results) == len(bodies), [r.text for r in responses if r.status_code != 200]
    by_reference: dict[str, Counter[str]] = {}
    for result in results:
        by_reference.setdefault(result["reference"], Counter())[result["outcome"]] += 1
    applied = sorted(
        outcome for counts in by_reference.values() for outcome in counts if outcome != "duplicate"
    )
    assert applied == ["exact", "partial"], by_reference
    assert all(counts["duplicate"] == COPIES - 1 for counts in by_reference.values())
    books = await books_after_delivery(committed, order_id)
    assert books == Books(OrderStatus.PAID, PRICE, 0, PRICE, PRICE, 0)


async def test_a_refund_event_before_the_payment_is_refused_then_applied_once_when_retried(
    committed: Committed, committing_client: httpx.AsyncClient, fake_stripe: FakeStripe
) -> None:
    order_id, _, buyer = await place(committed, "card")
    intent = await committing_client.post(f"/api/orders/{order_id}/card-payment", headers=buyer)
    assert intent.status_code == 200, intent.text
    intent_id = intent.json()["payment_intent_id"]
    charge = {
        "id": "ch_" + uuid.uuid4().hex[:12],
        "object": "charge",
        "payment_intent": intent_id,
        "amount": PRICE,
        "amount_refunded": 60_000,
        "refunded": False,
    }
    refunded = event("charge.refunded", charge)
    succeeded = event(
        "payment_intent.succeeded",
        {
            "id": intent_id,
            "object": "payment_intent",
            "amount": PRICE,
            "amount_received": PRICE,
            "currency": "vnd",
            "status": "succeeded",
        },
    )
    unknown = event("customer.created", {"id": "cus_" + uuid.uuid4().hex[:8]})
    committed.stripe_events += [json.loads(p)["id"] for p in (refunded, succeeded, unknown)]

    # Reordered: the refund arrives before the payment. Refused (not 2xx), so Stripe retries.
    early = await asyncio.gather(*(post_stripe(committing_client, refunded) for _ in range(3)))
    before = await books_after_delivery(committed, order_id)
    # The payment, delivered many times at once, with an event type nobody handles.
    paid = await asyncio.gather(
        *(post_stripe(committing_client, succeeded) for _ in range(COPIES)),
        *(post_stripe(committing_client, unknown) for _ in range(3)),
    )
    # Stripe's retries of the refund, many at once, among a copy whose amount was raised
    # after signing and a replay of a capture whose signature has gone stale.
    raised = refunded.replace('"amount_refunded": 60000', '"amount_refunded": 180000')
    assert raised != refunded
    spoilt = [
        (raised, signed(refunded, STRIPE_WEBHOOK_SECRET)),
        (refunded, signed(refunded, STRIPE_WEBHOOK_SECRET, timestamp=int(time.time()) - 301)),
    ]
    retried, refused = await asyncio.gather(
        asyncio.gather(*(post_stripe(committing_client, refunded) for _ in range(COPIES))),
        asyncio.gather(
            *(
                committing_client.post(
                    STRIPE_WEBHOOK, content=body.encode(), headers={"Stripe-Signature": header}
                )
                for body, header in spoilt * 2
            )
        ),
    )

    assert {(r.status_code, r.json()["code"]) for r in early} == {(409, "payment_not_settled")}
    assert Counter((r.status_code, r.json()["code"]) for r in refused) == {
        (401, "invalid_signature"): 2,
        (401, "stale_timestamp"): 2,
    }
    assert before == Books(OrderStatus.PENDING_PAYMENT, 0, 0, 0, 0, 0)
    assert outcomes(list(paid)) == {"settled": 1, "ignored": 1, "duplicate": COPIES + 1}
    assert outcomes(list(retried)) == {"reversed": 1, "duplicate": COPIES - 1}
    books = await books_after_delivery(committed, order_id)
    # A partial refund leaves the order paid, with what went back recorded.
    assert books == Books(OrderStatus.PAID, PRICE, 60_000, PRICE - 60_000, PRICE - 60_000, 0)
