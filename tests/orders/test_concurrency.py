"""200 buyers at once against 50 units, through an app that really commits.

The app is built by `create_app` with its own engine (no rolled-back test transaction), so
every request runs on a pooled connection of its own and commits; the requests are truly
concurrent on the database. Everything the test made is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.accounts.models import Role, User
from marketplace.app import create_app
from marketplace.catalog.models import Product, Variant
from marketplace.livestreams.models import BuyerCount, LiveItem, LiveSession
from marketplace.orders.models import IdempotencyRecord, Order, OrderLine, StockHold
from marketplace.orders.service import OrderService
from marketplace.sellers.models import Household
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import auth_headers, create_user
from tests.orders.factories import (
    SHIPPING_BODY,
    catalog_order,
    create_live_item,
    create_variant,
)
from tests.support.jobs import RecordingSender

pytestmark = pytest.mark.concurrency

BUYERS = 200
UNITS = 50


@dataclass
class World:
    household: Household
    variant: Variant
    item: LiveItem | None
    buyers: list[User]
    headers: list[dict[str, str]]


@pytest.fixture
async def committing_client(settings: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The production wiring on the test database: a real engine and pool, real commits."""
    database = replace(settings.database, pool_size=20, max_overflow=10)
    app = create_app(
        settings.with_overrides(database=database),
        redis=redis,
        job_sender=RecordingSender(),
        skip_logging_setup=True,
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
        ) as client,
    ):
        yield client


async def _build_world(engine: AsyncEngine, *, live: bool) -> World:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        variant = await create_variant(session, available=0 if live else UNITS)
        product = await session.get(Product, variant.product_id)
        assert product is not None
        assert product.household_id is not None
        household = await session.get(Household, product.household_id)
        assert household is not None
        item = (
            await create_live_item(session, variant, stock_cap=UNITS, per_buyer_limit=1)
            if live
            else None
        )
        buyers = [await create_user(session, role=Role.BUYER) for _ in range(BUYERS)]
        await session.commit()
        headers = [await auth_headers(session, buyer) for buyer in buyers]
        await session.commit()
    return World(household=household, variant=variant, item=item, buyers=buyers, headers=headers)


async def _clean(engine: AsyncEngine, world: World) -> None:
    buyer_ids = [buyer.id for buyer in world.buyers]
    async with AsyncSession(engine) as session:
        await session.execute(delete(Order).where(Order.buyer_user_id.in_(buyer_ids)))
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.scope.in_([f"user:{b}" for b in buyer_ids])
            )
        )
        if world.item is not None:
            host = await session.scalar(
                select(LiveSession.host_user_id).where(LiveSession.id == world.item.session_id)
            )
            await session.execute(
                delete(LiveSession).where(LiveSession.id == world.item.session_id)
            )
            buyer_ids.append(host)  # type: ignore[arg-type] # the host exists
        await session.execute(delete(Product).where(Product.id == world.variant.product_id))
        await session.execute(delete(Household).where(Household.id == world.household.id))
        await session.execute(delete(User).where(User.id.in_(buyer_ids)))
        await session.commit()


@pytest.fixture
async def catalog_world(engine: AsyncEngine) -> AsyncIterator[World]:
    world = await _build_world(engine, live=False)
    yield world
    await _clean(engine, world)


@pytest.fixture
async def live_world(engine: AsyncEngine) -> AsyncIterator[World]:
    world = await _build_world(engine, live=True)
    yield world
    await _clean(engine, world)


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], line: dict[str, object]
) -> httpx.Response:
    return await client.post(
        "/api/orders",
        json={"lines": [line], "payment_method": "vietqr", "shipping": dict(SHIPPING_BODY)},
        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
    )


def _refusal_codes(responses: list[httpx.Response]) -> Counter[str]:
    return Counter(r.json()["code"] for r in responses if r.status_code != 201)


async def test_two_hundred_buyers_at_once_buy_exactly_the_fifty_units_of_a_variant(
    committing_client: httpx.AsyncClient, catalog_world: World, engine: AsyncEngine
) -> None:
    world = catalog_world
    line = {"variant_id": str(world.variant.id), "quantity": 1}

    responses = await asyncio.gather(
        *(_post(committing_client, headers, line) for headers in world.headers)
    )

    accepted = [r for r in responses if r.status_code == 201]
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses[:3]]
    assert len(accepted) == UNITS
    assert set(_refusal_codes(responses)) == {"sold_out"}
    async with AsyncSession(engine) as session:
        left = await session.scalar(select(Variant.available).where(Variant.id == world.variant.id))
        held = await session.scalar(
            select(func.coalesce(func.sum(StockHold.quantity), 0)).where(
                StockHold.variant_id == world.variant.id, StockHold.released_at.is_(None)
            )
        )
        lines = await session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(
                OrderLine.variant_id == world.variant.id
            )
        )
        order_ids = set(
            (
                await session.execute(
                    select(Order.id).where(
                        Order.buyer_user_id.in_([buyer.id for buyer in world.buyers])
                    )
                )
            ).scalars()
        )
    assert (left, held, lines) == (0, UNITS, UNITS)
    assert order_ids == {uuid.UUID(r.json()["id"]) for r in accepted}


async def test_two_hundred_comment_buyers_twice_each_never_pass_the_limit_or_the_stock(
    committing_client: httpx.AsyncClient, live_world: World, engine: AsyncEngine
) -> None:
    world = live_world
    assert world.item is not None
    line = {"livestream_item_id": str(world.item.id), "quantity": 1}

    # Every buyer sends two orders at once; the per-buyer limit is one unit.
    responses = await asyncio.gather(
        *(_post(committing_client, headers, line) for headers in world.headers for _ in (1, 2))
    )

    accepted = [r for r in responses if r.status_code == 201]
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses[:3]]
    assert len(accepted) == UNITS
    assert set(_refusal_codes(responses)) <= {"sold_out", "limit_reached"}
    async with AsyncSession(engine) as session:
        left = await session.scalar(select(LiveItem.available).where(LiveItem.id == world.item.id))
        held = await session.scalar(
            select(func.coalesce(func.sum(StockHold.quantity), 0)).where(
                StockHold.livestream_item_id == world.item.id, StockHold.released_at.is_(None)
            )
        )
        per_buyer = dict(
            (
                await session.execute(
                    select(Order.buyer_user_id, func.sum(OrderLine.quantity))
                    .join(OrderLine, OrderLine.order_id == Order.id)
                    .where(OrderLine.livestream_item_id == world.item.id)
                    .group_by(Order.buyer_user_id)
                )
            ).all()
        )
        counted = await session.scalar(
            select(func.coalesce(func.sum(BuyerCount.quantity), 0)).where(
                BuyerCount.item_id == world.item.id
            )
        )
        variant_left = await session.scalar(
            select(Variant.available).where(Variant.id == world.variant.id)
        )
    assert (left, held, counted) == (0, UNITS, UNITS)
    assert sum(per_buyer.values()) == UNITS
    assert max(per_buyer.values()) == 1
    assert variant_left == 0


async def test_two_sweeps_at_once_release_each_expired_hold_exactly_once(
    catalog_world: World, engine: AsyncEngine, settings: Settings, redis: Redis
) -> None:
    world = catalog_world
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    for buyer in world.buyers[:40]:
        async with UnitOfWork(sessions, RecordingSender()) as uow:
            await OrderService(uow, settings, redis).place_order(
                catalog_order(buyer, world.variant, hold_seconds=60)
            )
            await uow.commit()
    later = datetime.now(UTC) + timedelta(minutes=2)

    async def sweep() -> int:
        async with UnitOfWork(sessions, RecordingSender()) as uow:
            released = await OrderService(
                uow, settings, redis, lambda: later
            ).release_expired_holds(later)
            await uow.commit()
        return released

    first, second = await asyncio.gather(sweep(), sweep())

    assert first + second == 40
    async with AsyncSession(engine) as session:
        left = await session.scalar(select(Variant.available).where(Variant.id == world.variant.id))
        statuses = Counter(
            (
                await session.execute(
                    select(Order.status).where(
                        Order.buyer_user_id.in_([buyer.id for buyer in world.buyers])
                    )
                )
            ).scalars()
        )
    assert left == UNITS
    assert statuses == {"cancelled": 40}
