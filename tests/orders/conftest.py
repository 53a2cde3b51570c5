"""The order service on the test's rolled-back transaction, with a clock tests can move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.orders.service import OrderService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork


class MovableClock:
    """Starts at the real time (hold expiry is compared with it) and moves when told."""

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
def orders(
    uow: UnitOfWork,
    settings: Settings,
    redis: Redis,
    clock: MovableClock,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> OrderService:
    return OrderService(uow, settings, redis, clock, claims=sessionmaker)
