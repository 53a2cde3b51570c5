"""The ping body, called directly in the test's loop against real Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.observability import bind_request_id
from marketplace.settings import Settings
from tests.support.jobs import RecordingSender
from workers.runtime import WorkerContext
from workers.system import HEARTBEAT_KEY, PING_KEY_PREFIX, PING_TTL_SECONDS, record_heartbeat

PINGED_AT = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)


@pytest.fixture
def context(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    job_sender: RecordingSender,
) -> WorkerContext:
    return WorkerContext(
        settings=settings,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=job_sender,
        clock=lambda: PINGED_AT,
    )


@pytest.fixture
async def token(redis: Redis) -> AsyncIterator[str]:
    value = uuid.uuid4().hex
    yield value
    await redis.delete(PING_KEY_PREFIX + value, HEARTBEAT_KEY)


async def test_a_ping_records_when_and_for_which_request_the_worker_was_alive(
    context: WorkerContext, redis: Redis, token: str
) -> None:
    bind_request_id("req-ping-1")
    try:
        await record_heartbeat(context, token=token)
    finally:
        bind_request_id(None)

    heartbeat = json.loads(await redis.get(HEARTBEAT_KEY))
    assert heartbeat["at"] == "2026-11-23T08:30:00+00:00"
    assert heartbeat["request_id"] == "req-ping-1"
    assert json.loads(await redis.get(PING_KEY_PREFIX + token)) == heartbeat


async def test_a_ping_token_expires_within_five_minutes(
    context: WorkerContext, redis: Redis, token: str
) -> None:
    await record_heartbeat(context, token=token)

    assert 0 < await redis.ttl(PING_KEY_PREFIX + token) <= PING_TTL_SECONDS
    assert await redis.ttl(HEARTBEAT_KEY) == -1


async def test_a_redelivered_ping_overwrites_rather_than_accumulates(
    context: WorkerContext, redis: Redis, token: str
) -> None:
    await record_heartbeat(context, token=token)
    a_minute_later = replace(context, clock=lambda: datetime(2026, 11, 23, 8, 31, tzinfo=UTC))
    await record_heartbeat(a_minute_later, token=token)

    heartbeat = json.loads(await redis.get(PING_KEY_PREFIX + token))
    assert heartbeat["at"] == "2026-11-23T08:31:00+00:00"
    assert heartbeat["request_id"] is None
