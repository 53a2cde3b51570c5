"""Redis stopped under the running API: every order either succeeds for good or fails with a
clean 503 that leaves nothing behind, and once Redis is back ordering and the livestream's
real-time events work again."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from marketplace.embedded import EmbeddedRedis
from tests.faults.conftest import (
    Api,
    Shop,
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


@asynccontextmanager
async def live_socket(api: Api, session_id: uuid.UUID) -> AsyncIterator[ClientConnection]:
    async with connect(f"{api.ws_url}/api/livestreams/{session_id}/ws", open_timeout=10) as ws:
        yield ws


async def next_event(ws: ClientConnection, after_seq: int, within: float) -> dict[str, Any]:
    """The first event numbered after `after_seq` (history may replay older ones)."""
    async with asyncio.timeout(within):
        while True:
            event: dict[str, Any] = json.loads(await ws.recv())
            if event["seq"] > after_seq:
                return event


async def test_orders_without_redis_succeed_for_good_or_fail_cleanly_and_go_through_after(
    api: Api,
    owned_postgres: OwnedPostgres,
    owned_redis: EmbeddedRedis,
    engine: AsyncEngine,
    http: httpx.AsyncClient,
) -> None:
    dsn = owned_postgres.dsn()
    shop = await open_shop(engine, variants=1, stock=50, stock_cap=50)
    (buyer,) = await log_in_buyers(engine, http, 1)
    variant = shop.variant_ids[0]
    accepted: dict[str, dict[str, Any]] = {}
    first = await place(http, buyer, "before-" + uuid.uuid4().hex, live_body(shop.item_id))
    assert first.status_code == 201, first.text + api.process.output()
    accepted[first.json()["id"]] = live_body(shop.item_id)

    # Stopped and started from this thread: Redis is told to exit when the thread that
    # started it ends (die_with_parent), so never from a short-lived helper thread.
    owned_redis.stop()
    try:
        answers: dict[str, tuple[dict[str, Any], httpx.Response]] = {}
        for body in (catalog_body([variant], 2), live_body(shop.item_id), catalog_body([variant])):
            key = "during-" + uuid.uuid4().hex
            answers[key] = (body, await place(http, buyer, key, body))
        refused = {}
        for key, (body, response) in answers.items():
            if response.status_code == 201:
                accepted[response.json()["id"]] = body
            else:
                assert_clean_unavailable(response, "redis")
                refused[key] = body
        # Nothing of a refused order was written: no order, no stock taken, and its
        # Idempotency-Key free (no claim, no answer kept), so the retry below is placed anew.
        assert await idempotency_records(dsn, list(refused)) == {}
        orders = await orders_of(dsn, [buyer])
        assert set(orders) == {uuid.UUID(i) for i in accepted}
        await assert_books_match(dsn, shop, orders)
    finally:
        owned_redis.start()

    for key, body in refused.items():
        retried = await place(http, buyer, key, body)
        assert retried.status_code == 201, retried.text + api.process.output()
        assert retried.headers.get("idempotent-replayed") != "true"
        accepted[retried.json()["id"]] = body
    for body in (catalog_body([variant]), live_body(shop.item_id)):
        after = await place(http, buyer, "after-" + uuid.uuid4().hex, body)
        assert after.status_code == 201, after.text + api.process.output()
        accepted[after.json()["id"]] = body

    orders = await orders_of(dsn, [buyer])
    assert set(orders) == {uuid.UUID(i) for i in accepted}
    await assert_books_match(dsn, shop, orders)


async def test_livestream_subscribers_get_events_again_once_redis_is_back(
    api: Api,
    owned_redis: EmbeddedRedis,
    engine: AsyncEngine,
    http: httpx.AsyncClient,
) -> None:
    shop = await open_shop(engine, variants=0, stock_cap=50)
    (buyer,) = await log_in_buyers(engine, http, 1)

    async def order() -> None:
        response = await place(http, buyer, uuid.uuid4().hex, live_body(shop.item_id))
        assert response.status_code == 201, response.text + api.process.output()

    async with live_socket(api, shop.session_id) as through_outage:
        await order()
        seen = await drain(through_outage, (await next_event(through_outage, 0, 10))["seq"])
        owned_redis.stop()
        # Longer than the Redis client's own reconnect attempts (a few, under a second).
        await asyncio.sleep(OUTAGE_SECONDS)
        owned_redis.start()
        await order()
        # Connected through the outage: it hears the new order, or its stream was ended so
        # it reconnects (with ?after=<seq>); never a socket left open and silent.
        try:
            event = await next_event(through_outage, seen, within=5)
            assert event["type"] in LIVE_ORDER_EVENTS
        except ConnectionClosed:
            pass

    async with live_socket(api, shop.session_id) as reconnected:
        latest = await drain(reconnected)
        await order()
        event = await next_event(reconnected, latest, within=10)
        assert event["type"] in LIVE_ORDER_EVENTS


LIVE_ORDER_EVENTS = {"order_accepted", "stock_left"}
OUTAGE_SECONDS = 2.0


async def drain(ws: ClientConnection, latest: int = 0) -> int:
    """Read what the socket has (the history first) until it goes quiet; the last seq."""
    while True:
        try:
            latest = (await next_event(ws, latest, within=1.0))["seq"]
        except TimeoutError:
            return latest


async def assert_books_match(
    dsn: str, shop: Shop, buyer_orders: dict[uuid.UUID, dict[str, int]]
) -> None:
    """Every order whole (each line with its hold), and each stock exactly its initial
    amount less what the holds took."""
    for order_id, order in buyer_orders.items():
        assert order["lines"] >= 1, order_id
        assert order["holds"] == order["lines"], order_id
        assert order["held_units"] == order["units"], order_id
    books = await stock_books(dsn, shop)
    for variant_id in shop.variant_ids:
        available, held = books[str(variant_id)]
        assert available + held == shop.initial_stock, books
    available, held = books[str(shop.item_id)]
    assert available + held == shop.stock_cap, books
