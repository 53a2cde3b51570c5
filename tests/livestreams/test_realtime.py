"""Real-time events across two API instances on one Redis, over real sockets: what happens on
one instance reaches WebSocket and SSE subscribers of the other, in order; a late joiner
gets the last 100 events first; a client that cannot keep up is disconnected with a close
reason while the others keep receiving."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from marketplace.accounts.models import User
from marketplace.catalog.models import Product
from marketplace.livestreams.events import (
    SLOW_CONSUMER_REASON,
    EventType,
    LiveEvent,
    LiveEventPublisher,
)
from marketplace.livestreams.models import HostVerification, LiveSession
from marketplace.orders.models import Order
from marketplace.sellers.models import Household
from marketplace.settings import Settings
from tests.accounts.factories import auth_headers
from tests.livestreams.factories import LiveRows, create_live_item
from tests.livestreams.servers import Instance, RawWebSocket, serve, two_instances

pytestmark = [pytest.mark.slow, pytest.mark.concurrency]


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[tuple[LiveRows, dict[str, str]]]:
    """A live session with item CAM1 (10 units), its host's bearer headers; committed for
    the servers to see, removed afterwards."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        rows = await create_live_item(session, stock_cap=10, per_buyer_limit=5)
        reviewer = await session.scalar(
            select(HostVerification.reviewed_by_user_id).where(
                HostVerification.host_user_id == rows.host.id
            )
        )
        await session.commit()
        headers = await auth_headers(session, rows.host)
        await session.commit()
    yield rows, headers
    async with AsyncSession(engine) as session:
        await session.execute(delete(Order).where(Order.livestream_session_id == rows.live.id))
        await session.execute(delete(LiveSession).where(LiveSession.id == rows.live.id))
        await session.execute(delete(Product).where(Product.id == rows.variant.product_id))
        await session.execute(delete(Household).where(Household.id == rows.household.id))
        await session.execute(delete(User).where(User.id.in_([rows.host.id, reviewer])))
        await session.commit()


async def _receive(ws: ClientConnection, count: int, within: float = 10) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(within):
        while len(out) < count:
            out.append(json.loads(await ws.recv()))
    return out


async def _nothing_more(ws: ClientConnection, wait: float = 0.3) -> list[Any]:
    try:
        async with asyncio.timeout(wait):
            return [json.loads(await ws.recv())]
    except TimeoutError:
        return []


def _ws_url(instance: Instance, session_id: uuid.UUID, *, host: bool = False) -> str:
    base = "/api/host/livestreams" if host else "/api/livestreams"
    return f"{instance.ws}{base}/{session_id}/ws"


async def test_changes_made_on_one_instance_reach_subscribers_of_both_in_order(
    settings: Settings, committed: tuple[LiveRows, dict[str, str]]
) -> None:
    rows, host_headers = committed
    prices = [150_000 - 1_000 * n for n in range(1, 21)]
    async with (
        two_instances(settings) as (first, second),
        connect(_ws_url(second, rows.live.id)) as on_second,
        connect(_ws_url(first, rows.live.id)) as on_first,
        httpx.AsyncClient(base_url=first.http) as http,
    ):
        for price in prices:
            response = await http.patch(
                f"/api/host/livestreams/{rows.live.id}/items/{rows.item.id}",
                json={"live_price_amount": price},
                headers=host_headers,
            )
            assert response.status_code == 200, response.text
        got_second = await _receive(on_second, 20)
        got_first = await _receive(on_first, 20)

    assert [e["type"] for e in got_second] == ["price_changed"] * 20
    assert [e["data"]["price_amount"] for e in got_second] == prices
    assert [e["seq"] for e in got_second] == sorted(e["seq"] for e in got_second)
    assert got_first == got_second


async def test_a_late_joiner_gets_the_last_100_events_first_then_live_ones(
    settings: Settings, redis: Redis, committed: tuple[LiveRows, dict[str, str]]
) -> None:
    rows, _ = committed
    publisher = LiveEventPublisher(redis, clock=lambda: datetime.now(UTC))

    def event(n: int) -> LiveEvent:
        return LiveEvent(EventType.STOCK_LEFT, rows.live.id, datetime.now(UTC), {"n": n})

    async with two_instances(settings) as (first, second):
        await publisher.publish([event(n) for n in range(130)])
        async with connect(_ws_url(second, rows.live.id)) as late:
            history = await _receive(late, 100)
            await publisher.publish([event(130)])
            [live] = await _receive(late, 1)
            extra = await _nothing_more(late)
        async with (
            httpx.AsyncClient(base_url=first.http, timeout=10) as http,
            http.stream(
                "GET",
                f"/api/livestreams/{rows.live.id}/events",
                headers={"Last-Event-ID": "125"},
            ) as sse,
        ):
            resumed = await _sse_events(sse, 6)

    assert [e["data"]["n"] for e in history] == list(range(30, 130))
    assert [e["seq"] for e in history] == list(range(31, 131))
    assert live["data"]["n"] == 130
    assert extra == []
    assert [(m["id"], m["event"]) for m in resumed] == [(str(n), "live") for n in range(126, 132)]
    assert json.loads(resumed[-1]["data"])["data"]["n"] == 130


async def _sse_events(response: httpx.Response, count: int) -> list[dict[str, str]]:
    """Parse `count` Server-Sent Events off a streaming response."""
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    async with asyncio.timeout(10):
        async for line in response.aiter_lines():
            if not line:
                if current:
                    events.append(current)
                    current = {}
                if len(events) == count:
                    return events
                continue
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")
    return events


async def test_a_comment_order_on_one_instance_shows_the_host_exact_stock_on_the_other(
    settings: Settings, committed: tuple[LiveRows, dict[str, str]]
) -> None:
    rows, host_headers = committed
    async with (
        two_instances(settings) as (first, second),
        connect(_ws_url(second, rows.live.id, host=True), additional_headers=host_headers) as host,
        connect(_ws_url(second, rows.live.id)) as public,
        httpx.AsyncClient(base_url=first.http) as http,
    ):
        token = (
            await http.post(
                f"/api/host/livestreams/{rows.live.id}/connector-token", headers=host_headers
            )
        ).json()["token"]
        posted = await http.post(
            f"/api/livestreams/{rows.live.id}/comments",
            json={
                "platform": "facebook",
                "external_id": f"c-{uuid.uuid4().hex}",
                "author_platform_id": "fb-2024",
                "author_display_name": "Lê Thị Thu Hà",
                "text": "chốt CAM1 x2 0905 123 456",
                "commented_at": datetime.now(UTC).isoformat(),
            },
            headers={"X-Connector-Token": token},
        )
        for_host = {e["type"]: e["data"] for e in await _receive(host, 2)}
        for_public = {e["type"]: e["data"] for e in await _receive(public, 2)}

    assert posted.status_code == 201, posted.text
    assert for_host["stock_left"]["available"] == 8
    assert for_public["stock_left"] == {
        "item_id": str(rows.item.id),
        "code": "CAM1",
        "sold_out": False,
        "stock": "<10",
    }
    assert for_public["order_accepted"] == {"code": "CAM1", "quantity": 2, "buyer": "L. T. T. Hà"}
    assert "0905" not in json.dumps([for_host, for_public])


async def test_the_host_stream_refuses_strangers_and_an_unknown_session_closes_with_its_code(
    settings: Settings, committed: tuple[LiveRows, dict[str, str]]
) -> None:
    rows, _ = committed
    async with two_instances(settings) as (first, _second):
        async with connect(_ws_url(first, uuid.uuid4())) as unknown:
            with pytest.raises(ConnectionClosed) as closed:
                await unknown.recv()
        with pytest.raises(InvalidStatus) as anonymous:
            await connect(_ws_url(first, rows.live.id, host=True))

    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4404, "session_not_found")
    assert anonymous.value.response.status_code == 403


async def test_a_browser_opens_the_host_stream_with_its_token_as_a_subprotocol(
    settings: Settings, committed: tuple[LiveRows, dict[str, str]]
) -> None:
    """Browsers cannot send an Authorization header on a WebSocket: the token rides in
    Sec-WebSocket-Protocol (`bearer, <token>`) and the server answers `bearer`."""
    rows, host_headers = committed
    token = host_headers["Authorization"].removeprefix("Bearer ")
    as_browser = [Subprotocol("bearer"), Subprotocol(token)]
    async with (
        serve(settings) as instance,
        connect(_ws_url(instance, rows.live.id, host=True), subprotocols=as_browser) as host,
        connect(_ws_url(instance, rows.live.id), subprotocols=as_browser) as public,
        httpx.AsyncClient(base_url=instance.http) as http,
    ):
        changed = await http.patch(
            f"/api/host/livestreams/{rows.live.id}/items/{rows.item.id}",
            json={"live_price_amount": 140_000},
            headers=host_headers,
        )
        [for_host] = await _receive(host, 1)
        [for_public] = await _receive(public, 1)

    assert changed.status_code == 200, changed.text
    assert (host.subprotocol, public.subprotocol) == ("bearer", "bearer")
    assert for_host["type"] == for_public["type"] == "price_changed"
    assert for_host["data"]["price_amount"] == 140_000


@pytest.mark.parametrize(
    ("query", "subprotocols"),
    [
        pytest.param("", ["bearer", "not-a-token-anyone-issued"], id="unknown-token"),
        pytest.param("", ["bearer"], id="bearer-without-token"),
        pytest.param("?token={token}", [], id="token-in-the-url"),
        pytest.param("?access_token={token}", [], id="access-token-in-the-url"),
        pytest.param("", ["{token}"], id="token-without-bearer"),
    ],
)
async def test_the_host_stream_refuses_a_bad_subprotocol_token_or_one_in_the_url(
    settings: Settings,
    committed: tuple[LiveRows, dict[str, str]],
    query: str,
    subprotocols: list[str],
) -> None:
    rows, host_headers = committed
    token = host_headers["Authorization"].removeprefix("Bearer ")
    offered = [Subprotocol(p.format(token=token)) for p in subprotocols] or None
    async with serve(settings) as instance:
        url = _ws_url(instance, rows.live.id, host=True) + query.format(token=token)
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, subprotocols=offered)

    assert refused.value.response.status_code == 403


async def test_a_client_that_cannot_keep_up_is_disconnected_with_a_reason_and_others_are_not(
    settings: Settings, redis: Redis, committed: tuple[LiveRows, dict[str, str]]
) -> None:
    rows, _ = committed
    publisher = LiveEventPublisher(redis, clock=lambda: datetime.now(UTC), history_size=1)
    padding = "cam sành Hương Trà " * 200  # about 4 KB an event
    total = 3_000

    async with two_instances(settings, channels_max_backlog=50) as (_first, second):
        slow = await RawWebSocket.open(second, f"/api/livestreams/{rows.live.id}/ws")
        async with connect(_ws_url(second, rows.live.id), max_size=None) as fast:
            received: list[int] = []

            async def keep_up() -> None:
                while len(received) < total:
                    received.append(json.loads(await fast.recv())["data"]["n"])

            reader = asyncio.create_task(keep_up())
            for start in range(0, total, 25):
                await publisher.publish(
                    LiveEvent(
                        EventType.STOCK_LEFT,
                        rows.live.id,
                        datetime.now(UTC),
                        {"n": n, "pad": padding},
                    )
                    for n in range(start, min(start + 25, total))
                )
                await asyncio.sleep(0.005)
            await asyncio.wait_for(reader, 60)
            slow_got, code, reason = await asyncio.wait_for(slow.read_until_close(), 30)
            await slow.aclose()

    assert received == list(range(total))
    assert (code, reason) == (1008, SLOW_CONSUMER_REASON)
    assert slow_got < total
