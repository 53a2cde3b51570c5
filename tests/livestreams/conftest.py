"""Livestream fixtures: the app with a clock tests can move, the process's event publisher,
and a subscriber that reads a session's channel straight from Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.app import create_app
from marketplace.livestreams.events import LiveEventPublisher, live_events
from marketplace.settings import Settings
from tests.support.jobs import RecordingSender


class MovableClock:
    """Starts at the real time and moves when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def app(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    job_sender: RecordingSender,
    clock: MovableClock,
) -> Litestar:
    return create_app(
        settings,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=job_sender,
        clock=clock,
        skip_logging_setup=True,
    )


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as c,
    ):
        yield c


@pytest.fixture
def events(app: Litestar, client: httpx.AsyncClient) -> LiveEventPublisher:
    """The app's publisher (the app is started by `client`); `await events.drain()` waits
    for what commits have sent."""
    return live_events(app.state["resources"])


class ChannelReader:
    """A plain Redis subscriber to one channel: what any API instance would receive."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self._redis = Redis.from_url(redis_url)
        self._pubsub = self._redis.pubsub()
        self.channel = channel

    async def __aenter__(self) -> ChannelReader:
        await self._pubsub.subscribe(self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._pubsub.aclose()
        await self._redis.aclose()

    async def read(self, count: int, within: float = 5.0) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async with asyncio.timeout(within):
            while len(out) < count:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=within
                )
                if message is not None:
                    out.append(json.loads(message["data"]))
        return out

    async def read_quietly(self, wait: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrives within `wait` seconds."""
        out: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while (left := deadline - loop.time()) > 0:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message is not None:
                out.append(json.loads(message["data"]))
        return out
