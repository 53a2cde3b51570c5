"""Events of a session: numbered and kept (the last 100) by one Redis script, published only
after the commit that caused them, with exact stock on the host's channel only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import msgspec
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.livestreams.events import (
    AfterCommitEvents,
    EventType,
    HistoryPubSubBackend,
    LiveEvent,
    LiveEventPublisher,
    event_seq,
    host_channel,
    public_channel,
    short_name,
    stock_bucket,
)
from marketplace.unit_of_work import UnitOfWork
from tests.livestreams.conftest import ChannelReader, MovableClock
from tests.livestreams.factories import live_world, pin

HOST_API = "/api/host/livestreams"


@pytest.mark.parametrize(
    ("available", "bucket"),
    [
        (0, "0"),
        (1, "<10"),
        (9, "<10"),
        (10, "10+"),
        (19, "10+"),
        (20, "20+"),
        (50, "50+"),
        (99, "50+"),
        (100, "100+"),
        (5000, "100+"),
    ],
)
def test_the_public_sees_stock_in_rounded_buckets(available: int, bucket: str) -> None:
    assert stock_bucket(available) == bucket


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Nguyễn Văn An", "N. V. An"),
        ("Trần Thị Bích", "T. T. Bích"),
        ("Hồng", "H."),
        ("  Lê   Cường ", "L. Cường"),
        ("", "Khách"),
    ],
)
def test_a_buyers_name_is_shortened_to_initials_and_the_given_name(name: str, shown: str) -> None:
    assert short_name(name) == shown


def _event(session_id: uuid.UUID, n: int) -> LiveEvent:
    return LiveEvent(EventType.STOCK_LEFT, session_id, datetime.now(UTC), {"n": n})


async def test_events_are_numbered_in_order_and_the_history_keeps_the_last_100(
    redis: Redis, redis_url: str, clock: MovableClock
) -> None:
    session_id = uuid.uuid4()
    publisher = LiveEventPublisher(redis, clock=clock)
    backend = HistoryPubSubBackend(redis=redis)

    async with ChannelReader(redis_url, public_channel(session_id)) as reader:
        await publisher.publish([_event(session_id, n) for n in range(130)])
        live = await reader.read(130)
    history = await backend.get_history(public_channel(session_id))

    assert [e["seq"] for e in live] == list(range(1, 131))
    assert [e["data"]["n"] for e in live] == list(range(130))
    assert [event_seq(h) for h in history] == list(range(31, 131))
    assert msgspec.json.decode(history[-1])["data"] == {"n": 129}


async def test_an_event_waits_for_the_commit_and_a_rollback_drops_it(
    uow: UnitOfWork, redis: Redis, redis_url: str, clock: MovableClock
) -> None:
    session_id = uuid.uuid4()
    publisher = LiveEventPublisher(redis, clock=clock)
    buffer = AfterCommitEvents.of(uow.session, publisher)

    async with ChannelReader(redis_url, public_channel(session_id)) as reader:
        buffer.add(_event(session_id, 1))
        await uow.session.flush()
        before_commit = await reader.read_quietly(0.2)
        await uow.commit()
        await publisher.drain()
        after_commit = await reader.read(1)
        buffer.add(_event(session_id, 2))
        await uow.rollback()
        await publisher.drain()
        after_rollback = await reader.read_quietly(0.2)

    assert before_commit == []
    assert [e["data"]["n"] for e in after_commit] == [1]
    assert after_rollback == []


async def test_a_rolled_back_savepoint_drops_only_its_own_events(
    uow: UnitOfWork, redis: Redis, redis_url: str, clock: MovableClock
) -> None:
    session_id = uuid.uuid4()
    publisher = LiveEventPublisher(redis, clock=clock)
    buffer = AfterCommitEvents.of(uow.session, publisher)

    async with ChannelReader(redis_url, public_channel(session_id)) as reader:
        buffer.add(_event(session_id, 1))
        async with uow.session.begin_nested():
            buffer.add(_event(session_id, 2))
        with pytest.raises(RuntimeError):
            await _refused_savepoint(uow, buffer, _event(session_id, 3))
        buffer.add(_event(session_id, 4))
        await uow.commit()
        await publisher.drain()
        received = await reader.read(3)
        extra = await reader.read_quietly(0.2)

    assert [e["data"]["n"] for e in received] == [1, 2, 4]
    assert extra == []


async def _refused_savepoint(uow: UnitOfWork, buffer: AfterCommitEvents, event: LiveEvent) -> None:
    async with uow.session.begin_nested():
        buffer.add(event)
        raise RuntimeError("refused")


async def test_pinning_announces_the_item_with_a_bucket_to_the_public_and_exact_stock_to_the_host(
    client: httpx.AsyncClient, session: AsyncSession, redis_url: str, events: LiveEventPublisher
) -> None:
    world = await live_world(client, session, available=40)

    async with (
        ChannelReader(redis_url, public_channel(world.session_id)) as public,
        ChannelReader(redis_url, host_channel(world.session_id)) as host,
    ):
        item = await pin(client, world, code="CAM1", stock_cap=37)
        await events.drain()
        [to_public] = await public.read(1)
        [to_host] = await host.read(1)

    assert to_public["type"] == "item_pinned"
    assert to_public["data"]["item_id"] == item["id"]
    assert (to_public["data"]["stock"], to_public["data"]["price_amount"]) == ("20+", 150_000)
    assert "available" not in to_public["data"]
    assert to_host["data"]["available"] == 37


async def test_price_changes_unpinning_and_state_changes_are_announced_in_order(
    client: httpx.AsyncClient, session: AsyncSession, redis_url: str, events: LiveEventPublisher
) -> None:
    world = await live_world(client, session, available=40)
    item = await pin(client, world, code="CAM1", stock_cap=10)
    await events.drain()
    item_url = f"{HOST_API}/{world.session_id}/items/{item['id']}"

    async with ChannelReader(redis_url, public_channel(world.session_id)) as public:
        await client.patch(
            item_url, json={"live_price_amount": 139_000}, headers=world.host.headers
        )
        await client.post(f"{item_url}/unpin", headers=world.host.headers)
        await client.post(f"{HOST_API}/{world.session_id}/end", headers=world.host.headers)
        await events.drain()
        received = await public.read(3)

    assert [e["type"] for e in received] == [
        "price_changed",
        "item_unpinned",
        "session_state_changed",
    ]
    assert received[0]["data"]["price_amount"] == 139_000
    assert received[2]["data"] == {"status": "ended"}
    assert received[0]["seq"] < received[1]["seq"] < received[2]["seq"]


async def test_a_refused_request_announces_nothing(
    client: httpx.AsyncClient, session: AsyncSession, redis_url: str, events: LiveEventPublisher
) -> None:
    world = await live_world(client, session, available=5)

    async with ChannelReader(redis_url, public_channel(world.session_id)) as public:
        refused = await client.post(
            f"{HOST_API}/{world.session_id}/items",
            json={
                "variant_id": str(world.variant.id),
                "code": "CAM1",
                "live_price_amount": 150_000,
                "stock_cap": 6,
                "per_buyer_limit": 2,
            },
            headers=world.host.headers,
        )
        await events.drain()
        received = await public.read_quietly(0.3)

    assert refused.status_code == 409
    assert received == []
