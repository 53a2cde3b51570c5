"""Flash deals: a lower price after a 10-300 s countdown, for 1-20 minutes, by the server's
clock; the item goes back to its live price afterwards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.livestreams.events import (
    EventType,
    LiveEvent,
    LiveEventPublisher,
    public_channel,
)
from marketplace.livestreams.models import FlashDeal
from tests.livestreams.conftest import ChannelReader, MovableClock
from tests.livestreams.factories import World, live_world, pin

HOST_API = "/api/host/livestreams"


async def _flash(
    client: httpx.AsyncClient, world: World, item: dict[str, Any], **body: Any
) -> httpx.Response:
    payload = {"price_amount": 99_000, "countdown_seconds": 30, "duration_minutes": 5}
    payload.update(body)
    return await client.post(
        f"{HOST_API}/{world.session_id}/items/{item['id']}/flash-deals",
        json=payload,
        headers=world.host.headers,
    )


async def _deals(session: AsyncSession, world: World) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(FlashDeal)
            .where(FlashDeal.session_id == world.session_id)
        )
        or 0
    )


async def test_a_flash_deal_counts_down_runs_and_ends_by_the_servers_clock(
    client: httpx.AsyncClient, session: AsyncSession, clock: MovableClock
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world, live_price_amount=150_000)
    items_url = f"/api/livestreams/{world.session_id}/items"

    created = await _flash(client, world, item, countdown_seconds=30, duration_minutes=5)
    counting = (await client.get(items_url)).json()[0]
    clock.advance(seconds=30)
    running = (await client.get(items_url)).json()[0]
    clock.advance(minutes=5)
    over = (await client.get(items_url)).json()[0]

    assert created.status_code == 201, created.text
    deal = created.json()["flash_deal"]
    assert datetime.fromisoformat(deal["starts_at"]) - datetime.fromisoformat(
        counting["server_now"]
    ) == timedelta(seconds=30)
    assert (counting["price_amount"], counting["flash_deal"]["running"]) == (150_000, False)
    assert (running["price_amount"], running["flash_deal"]["running"]) == (99_000, True)
    assert (over["price_amount"], over["flash_deal"]) == (150_000, None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"countdown_seconds": 9}, "countdown_seconds", id="countdown-9s"),
        pytest.param({"countdown_seconds": 301}, "countdown_seconds", id="countdown-301s"),
        pytest.param({"duration_minutes": 0}, "duration_minutes", id="duration-0"),
        pytest.param({"duration_minutes": 21}, "duration_minutes", id="duration-21min"),
        pytest.param({"price_amount": 0}, "price_amount", id="price-zero"),
        pytest.param({"price_amount": -1}, "price_amount", id="price-negative"),
        pytest.param({"price_amount": 150_000}, "price_amount", id="not-below-live-price"),
        pytest.param({"price_amount": 180_000}, "price_amount", id="above-live-price"),
    ],
)
async def test_a_flash_deal_outside_the_allowed_ranges_is_a_problem_and_writes_nothing(
    client: httpx.AsyncClient, session: AsyncSession, body: dict[str, Any], field: str
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world, live_price_amount=150_000)

    response = await _flash(client, world, item, **body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["errors"][0]["field"]
    assert await _deals(session, world) == 0


@pytest.mark.parametrize(
    ("countdown", "minutes"), [(10, 1), (300, 20)], ids=["shortest", "longest"]
)
async def test_the_range_limits_themselves_are_allowed(
    client: httpx.AsyncClient, session: AsyncSession, countdown: int, minutes: int
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world)

    response = await _flash(
        client, world, item, countdown_seconds=countdown, duration_minutes=minutes
    )

    assert response.status_code == 201, response.text


async def test_one_flash_deal_per_item_at_a_time(
    client: httpx.AsyncClient, session: AsyncSession, clock: MovableClock
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world)
    await _flash(client, world, item, countdown_seconds=10, duration_minutes=1)

    during = await _flash(client, world, item)
    clock.advance(seconds=71)
    after = await _flash(client, world, item)

    assert (during.status_code, during.json()["code"]) == (409, "flash_deal_running")
    assert after.status_code == 201


async def test_a_flash_deal_needs_a_live_session(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, go_live=False)
    item = await pin(client, world)

    response = await _flash(client, world, item)

    assert (response.status_code, response.json()["code"]) == (409, "session_not_live")


async def test_the_countdown_is_announced_with_the_servers_times(
    client: httpx.AsyncClient,
    session: AsyncSession,
    redis_url: str,
    events: LiveEventPublisher,
    clock: MovableClock,
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world, code="BUOI2", live_price_amount=150_000)
    await events.drain()

    async with ChannelReader(redis_url, public_channel(world.session_id)) as public:
        await _flash(client, world, item, countdown_seconds=45, duration_minutes=3)
        await events.drain()
        [countdown] = await public.read(1)

    data = countdown["data"]
    assert countdown["type"] == "flash_countdown"
    assert (data["code"], data["price_amount"], data["live_price_amount"]) == (
        "BUOI2",
        99_000,
        150_000,
    )
    assert datetime.fromisoformat(data["server_now"]) == clock.now
    assert datetime.fromisoformat(data["starts_at"]) == clock.now + timedelta(seconds=45)
    assert datetime.fromisoformat(data["ends_at"]) == clock.now + timedelta(seconds=45, minutes=3)


async def test_start_and_end_are_announced_when_the_servers_clock_reaches_them(
    redis: Redis, redis_url: str
) -> None:
    session_id, deal_id, voided = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    publisher = LiveEventPublisher(redis, clock=lambda: datetime.now(UTC))
    soon = datetime.now(UTC) + timedelta(milliseconds=200)

    def event(kind: EventType, n: int) -> LiveEvent:
        return LiveEvent(kind, session_id, soon, {"n": n})

    async with ChannelReader(redis_url, public_channel(session_id)) as public:
        publisher.schedule(soon, [event(EventType.FLASH_STARTED, 1)], void_if=deal_id)
        publisher.schedule(
            soon + timedelta(milliseconds=200), [event(EventType.FLASH_ENDED, 2)], void_if=deal_id
        )
        publisher.schedule(soon, [event(EventType.FLASH_STARTED, 3)], void_if=voided)
        await publisher.void_flash_deals([voided])
        early = await public.read_quietly(0.1)
        later = await public.read(2, within=3)
        nothing_more = await public.read_quietly(0.5)
    await publisher.close()

    assert early == []
    assert [(e["type"], e["data"]["n"]) for e in later] == [
        ("flash_started", 1),
        ("flash_ended", 2),
    ]
    assert nothing_more == []
