"""PostgreSQL restarted under concurrent order traffic: requests caught by the restart fail
with a clean 503 (never a 500), no order is half-written, every order row is one a client
was told about, and ordering works again once PostgreSQL is back."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.faults.conftest import (
    Api,
    Buyer,
    assert_clean_unavailable,
    catalog_body,
    idempotency_records,
    live_body,
    log_in_buyers,
    open_shop,
    orders_of,
    place,
    stock_books,
)
from tests.faults.services import OwnedPostgres

pytestmark = pytest.mark.slow

CLIENTS = 4
DOWN_SECONDS = 1.0
RECOVERY_SECONDS = 3.0
"""After PostgreSQL is back, this long for the pool to replace its dead connections; every
request sent later must succeed."""
LIVE_ORDERS_PER_BUYER = 15
"""Below the item's per-buyer limit (20), so no refusal is about the limit."""


@dataclass
class Attempt:
    buyer: Buyer
    key: str
    body: dict[str, Any]
    sent_at: float
    response: httpx.Response


@dataclass
class Traffic:
    attempts: list[Attempt] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def client_loop(
    http: httpx.AsyncClient,
    buyer: Buyer,
    bodies: list[dict[str, Any]],
    live: dict[str, Any],
    traffic: Traffic,
) -> None:
    """One buyer ordering with a short pause, each order with a new Idempotency-Key; the
    livestream item only up to its per-buyer limit."""
    rng = random.Random(buyer.token)
    live_orders = 0
    while not traffic.stop.is_set():
        body = live if live_orders < LIVE_ORDERS_PER_BUYER and rng.random() < 0.3 else None
        live_orders += body is not None
        body = body or rng.choice(bodies)
        key = uuid.uuid4().hex
        sent_at = time.monotonic()
        response = await place(http, buyer, key, body)
        traffic.attempts.append(Attempt(buyer, key, body, sent_at, response))
        await asyncio.sleep(0.02)


async def test_a_postgres_restart_mid_traffic_fails_requests_cleanly_and_leaves_whole_orders(
    api: Api, owned_postgres: OwnedPostgres, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    dsn = owned_postgres.dsn()
    shop = await open_shop(engine, variants=2, stock=10_000, stock_cap=10_000)
    buyers = await log_in_buyers(engine, http, CLIENTS)
    bodies = [
        catalog_body(shop.variant_ids),  # two lines: both holds or neither
        catalog_body(shop.variant_ids[:1], 2),
    ]
    live = live_body(shop.item_id)  # one line of a pinned item: the group-commit path
    traffic = Traffic()
    clients = [
        asyncio.create_task(client_loop(http, buyer, bodies, live, traffic)) for buyer in buyers
    ]
    try:
        await asyncio.sleep(1.0)
        stopped_at = time.monotonic()
        # Immediate: no checkpoint, every backend killed mid-statement, as in a crash.
        await asyncio.to_thread(owned_postgres.stop, "immediate")
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(owned_postgres.start)
        back_at = time.monotonic()
        await asyncio.sleep(RECOVERY_SECONDS + 1.5)
    finally:
        traffic.stop.set()
        await asyncio.gather(*clients)

    by_status: dict[int, int] = {}
    for attempt in traffic.attempts:
        by_status[attempt.response.status_code] = by_status.get(attempt.response.status_code, 0) + 1
    log = api.process.output()
    # Every answer is an order or a clean 503; no 500, no other refusal.
    assert set(by_status) <= {201, 503}, (by_status, log)
    refused = [a for a in traffic.attempts if a.response.status_code == 503]
    for attempt in refused:
        assert_clean_unavailable(attempt.response, "database")
    assert refused, f"the restart caught no request: {by_status}"
    assert any(a.sent_at < stopped_at and a.response.status_code == 201 for a in traffic.attempts)
    late = [a for a in traffic.attempts if a.sent_at > back_at + RECOVERY_SECONDS]
    assert late, "no traffic after the recovery window"
    assert all(a.response.status_code == 201 for a in late), (
        [(a.response.status_code, a.response.text) for a in late if a.response.status_code != 201],
        log,
    )

    # The refused requests are retried with their keys, as a client told 503 would: each is
    # placed (or replays the order the cut connection hid), unless its key is still leased
    # to the request that died with the old server (409 request_in_progress, no order).
    accepted = {
        a.response.json()["id"]: a for a in traffic.attempts if a.response.status_code == 201
    }
    leased = []
    for attempt in refused:
        retried = await place(http, attempt.buyer, attempt.key, attempt.body)
        if retried.status_code == 201:
            accepted[retried.json()["id"]] = attempt
        else:
            assert retried.status_code == 409, retried.text
            assert retried.json()["code"] == "request_in_progress", retried.text
            leased.append(attempt.key)

    # Every order row is whole and is one some client was given; nothing else exists.
    orders = await orders_of(dsn, buyers)
    assert set(orders) == {uuid.UUID(order_id) for order_id in accepted}
    for order_id, order in orders.items():
        assert order["lines"] >= 1, order_id
        assert order["holds"] == order["lines"], order_id
        assert order["held_units"] == order["units"], order_id
    # Stock: what is left plus what the holds took is the initial stock, to the unit, and
    # the holds are exactly the units of the accepted orders.
    books = await stock_books(dsn, shop)
    for variant_id in shop.variant_ids:
        available, held = books[str(variant_id)]
        assert available + held == shop.initial_stock, books
    available, held = books[str(shop.item_id)]
    assert available + held == shop.stock_cap, books
    assert sum(held for _, held in books.values()) == sum(o["units"] for o in orders.values())
    # A leased key is an unfinished claim without an order; it frees itself when the lease
    # runs out (IDEMPOTENCY_LEASE), and the client's retry then places the order.
    for key, record in (await idempotency_records(dsn, leased)).items():
        assert record["status"] == "in_flight", key
        assert record["order_id"] is None, key
