"""The beat task that gives back the stock of holds that ran out."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.models import Role
from marketplace.catalog.models import Variant
from marketplace.jobs import JobName
from marketplace.orders.models import Order
from marketplace.orders.service import OrderService
from marketplace.settings import Settings
from tests.accounts.factories import create_user
from tests.orders.conftest import MovableClock
from tests.orders.factories import catalog_order, create_variant
from tests.support.jobs import RecordingSender
from workers.app import beat_schedule
from workers.orders import release_expired_holds
from workers.runtime import WorkerContext


async def test_the_sweep_task_cancels_expired_orders_and_returns_their_stock(
    *,
    session: AsyncSession,
    orders: OrderService,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    clock: MovableClock,
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    variant = await create_variant(session, available=5)
    order = await orders.place_order(catalog_order(buyer, variant, quantity=5))
    later = clock.now + timedelta(minutes=16)
    context = WorkerContext(
        settings=settings,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=RecordingSender(),
        clock=lambda: later,
    )

    released = await release_expired_holds(context)
    again = await release_expired_holds(context)

    assert (released, again) == (1, 0)
    status = await session.scalar(
        select(Order.status).where(Order.id == order.id).execution_options(populate_existing=True)
    )
    stock = await session.scalar(select(Variant.available).where(Variant.id == variant.id))
    assert (status, stock) == ("cancelled", 5)


def test_beat_sweeps_holds_and_the_outbox_every_thirty_seconds() -> None:
    schedule = beat_schedule()

    assert schedule[JobName.RELEASE_EXPIRED_HOLDS.value]["schedule"] == 30.0
    assert schedule[JobName.DELIVER_OUTBOX.value]["schedule"] == 30.0
