"""`reserve_item` and `release_item`: how the orders domain takes a pinned item. The price is
the one that applies at `now` by the server's clock; the per-buyer limit and the item's own
counter hold under concurrency; a sold-out flag in Redis answers refusals once sold out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.accounts.models import User
from marketplace.catalog.models import Product, Variant
from marketplace.errors import MarketplaceError
from marketplace.livestreams.events import LiveEventPublisher
from marketplace.livestreams.models import (
    BuyerCount,
    FlashDeal,
    HostVerification,
    LiveItem,
    LiveSession,
    SessionStatus,
)
from marketplace.livestreams.service import LivestreamService
from marketplace.sellers.models import Household
from marketplace.unit_of_work import UnitOfWork
from tests.livestreams.conftest import MovableClock
from tests.livestreams.factories import LiveRows, create_live_item
from tests.sellers.factories import identity
from tests.support.jobs import RecordingSender

BUYER = "facebook:100001"


@pytest.fixture
def publisher(redis: Redis, clock: MovableClock) -> LiveEventPublisher:
    return LiveEventPublisher(redis, clock=clock)


@pytest.fixture
def live(
    uow: UnitOfWork, redis: Redis, clock: MovableClock, publisher: LiveEventPublisher
) -> LivestreamService:
    return LivestreamService(uow, redis, clock, events=publisher)


async def _item(session: AsyncSession, item: LiveItem) -> LiveItem:
    await session.refresh(item)
    return item


async def _count(session: AsyncSession, item: LiveItem, buyer: str = BUYER) -> int | None:
    return await session.scalar(
        select(BuyerCount.quantity).where(
            BuyerCount.item_id == item.id, BuyerCount.buyer_key == buyer
        )
    )


async def test_a_reservation_takes_from_the_items_counter_at_the_live_price(
    session: AsyncSession, live: LivestreamService, clock: MovableClock
) -> None:
    rows = await create_live_item(
        session, stock_cap=10, live_price_amount=150_000, hold_seconds=600
    )

    reserved = await live.reserve_item(
        item_id=rows.item.id, buyer_key=BUYER, quantity=3, now=clock.now
    )

    assert reserved.unit_price_amount == 150_000
    assert (reserved.hold_seconds, reserved.code, reserved.session_id) == (
        600,
        "CAM1",
        rows.live.id,
    )
    assert (reserved.variant_id, reserved.product_id) == (rows.variant.id, rows.variant.product_id)
    assert (await _item(session, rows.item)).available == 7
    assert await _count(session, rows.item) == 3


async def test_the_flash_price_applies_only_inside_its_window_by_the_given_clock(
    session: AsyncSession, live: LivestreamService, clock: MovableClock
) -> None:
    rows = await create_live_item(
        session, live_price_amount=150_000, per_buyer_limit=20, stock_cap=20
    )
    starts = clock.now + timedelta(seconds=30)
    session.add(
        FlashDeal(
            session_id=rows.live.id,
            item_id=rows.item.id,
            price_amount=99_000,
            countdown_seconds=30,
            duration_seconds=300,
            starts_at=starts,
            ends_at=starts + timedelta(minutes=5),
        )
    )
    await session.flush()

    moments = [
        starts - timedelta(seconds=1),
        starts,
        starts + timedelta(minutes=4, seconds=59),
        starts + timedelta(minutes=5),
    ]
    prices = []
    for n, moment in enumerate(moments):
        reserved = await live.reserve_item(
            item_id=rows.item.id, buyer_key=f"facebook:{n}", quantity=1, now=moment
        )
        prices.append(reserved.unit_price_amount)

    assert prices == [150_000, 99_000, 99_000, 150_000]


async def test_the_per_buyer_limit_counts_every_reservation_of_the_buyer(
    session: AsyncSession, live: LivestreamService, clock: MovableClock
) -> None:
    rows = await create_live_item(session, stock_cap=20, per_buyer_limit=5)
    await live.reserve_item(item_id=rows.item.id, buyer_key=BUYER, quantity=3, now=clock.now)

    with pytest.raises(MarketplaceError) as refused:
        await live.reserve_item(item_id=rows.item.id, buyer_key=BUYER, quantity=3, now=clock.now)
    other = await live.reserve_item(
        item_id=rows.item.id, buyer_key="facebook:2", quantity=5, now=clock.now
    )

    assert (refused.value.status_code, refused.value.code) == (409, "limit_reached")
    assert await _count(session, rows.item) == 3
    assert other.item_id == rows.item.id
    assert (await _item(session, rows.item)).available == 12


async def test_asking_for_more_than_the_limit_at_once_is_refused(
    session: AsyncSession, live: LivestreamService, clock: MovableClock
) -> None:
    rows = await create_live_item(session, per_buyer_limit=2)

    with pytest.raises(MarketplaceError) as refused:
        await live.reserve_item(item_id=rows.item.id, buyer_key=BUYER, quantity=3, now=clock.now)

    assert refused.value.code == "limit_reached"
    assert await _count(session, rows.item) is None


async def test_more_than_is_left_is_refused_and_writes_nothing(
    session: AsyncSession, live: LivestreamService, clock: MovableClock
) -> None:
    rows = await create_live_item(session, stock_cap=3, per_buyer_limit=5)

    with pytest.raises(MarketplaceError) as refused:
        await live.reserve_item(item_id=rows.item.id, buyer_key=BUYER, quantity=4, now=clock.now)

    assert refused.value.code == "sold_out"
    assert "only 3 left" in refused.value.detail
    assert (await _item(session, rows.item)).available == 3
    assert await _count(session, rows.item) is None


async def test_once_sold_out_a_redis_flag_answers_until_stock_returns(
    session: AsyncSession,
    uow: UnitOfWork,
    live: LivestreamService,
    publisher: LiveEventPublisher,
    clock: MovableClock,
) -> None:
    rows = await create_live_item(session, stock_cap=2, per_buyer_limit=5)
    await live.reserve_item(item_id=rows.item.id, buyer_key=BUYER, quantity=2, now=clock.now)
    await uow.commit()
    await publisher.drain()
    sold_out_at = (await _item(session, rows.item)).sold_out_at
    # Behind the flag's back: if the row were read, this stock would be found.
    await session.execute(update(LiveItem).where(LiveItem.id == rows.item.id).values(available=1))
    await session.flush()

    with pytest.raises(MarketplaceError) as flagged:
        await live.reserve_item(
            item_id=rows.item.id, buyer_key="facebook:2", quantity=1, now=clock.now
        )
    await live.release_item(item_id=rows.item.id, buyer_key=BUYER, quantity=1)
    after_release = await live.reserve_item(
        item_id=rows.item.id, buyer_key="facebook:2", quantity=1, now=clock.now
    )

    assert flagged.value.code == "sold_out"
    assert sold_out_at is not None
    assert after_release.item_id == rows.item.id


async def test_a_reservation_needs_a_live_session_and_a_pinned_item(
    session: AsyncSession, live: LivestreamService, clock: MovableClock
) -> None:
    scheduled = await create_live_item(session, status=SessionStatus.SCHEDULED)
    unpinned = await create_live_item(session)
    unpinned.item.unpinned_at = clock.now
    await session.flush()

    with pytest.raises(MarketplaceError) as not_live:
        await live.reserve_item(
            item_id=scheduled.item.id, buyer_key=BUYER, quantity=1, now=clock.now
        )
    with pytest.raises(MarketplaceError) as gone:
        await live.reserve_item(
            item_id=unpinned.item.id, buyer_key=BUYER, quantity=1, now=clock.now
        )
    with pytest.raises(MarketplaceError) as unknown:
        await live.reserve_item(item_id=uuid.uuid4(), buyer_key=BUYER, quantity=1, now=clock.now)

    assert (not_live.value.status_code, not_live.value.code) == (409, "session_not_live")
    assert (gone.value.status_code, gone.value.code) == (409, "item_unpinned")
    assert (unknown.value.status_code, unknown.value.code) == (404, "item_not_found")


async def test_a_release_gives_stock_and_the_buyers_count_back(
    session: AsyncSession, live: LivestreamService, clock: MovableClock
) -> None:
    rows = await create_live_item(session, stock_cap=10, per_buyer_limit=5)
    await live.reserve_item(item_id=rows.item.id, buyer_key=BUYER, quantity=5, now=clock.now)

    await live.release_item(item_id=rows.item.id, buyer_key=BUYER, quantity=5)
    again = await live.reserve_item(
        item_id=rows.item.id, buyer_key=BUYER, quantity=5, now=clock.now
    )

    assert again.item_id == rows.item.id
    assert (await _item(session, rows.item)).available == 5
    assert await _count(session, rows.item) == 5


async def test_a_release_after_the_session_ended_goes_back_to_the_variant(
    session: AsyncSession, live: LivestreamService, clock: MovableClock
) -> None:
    rows = await create_live_item(session, stock_cap=10, variant_left=30)
    await live.reserve_item(item_id=rows.item.id, buyer_key=BUYER, quantity=4, now=clock.now)
    await live.end(identity(rows.host), rows.live.id)
    await session.refresh(rows.variant)
    assert rows.variant.available == 36

    await live.release_item(item_id=rows.item.id, buyer_key=BUYER, quantity=4)

    await session.refresh(rows.variant)
    assert rows.variant.available == 40
    assert (await _item(session, rows.item)).available == 0


# --- Under real concurrency ------------------------------------------------------------------


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[LiveRows]:
    """A live item with 10 units, per-buyer limit 3, committed for real; removed after."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        rows = await create_live_item(session, stock_cap=10, per_buyer_limit=3)
        reviewer = await session.scalar(
            select(HostVerification.reviewed_by_user_id).where(
                HostVerification.host_user_id == rows.host.id
            )
        )
        await session.commit()
    yield rows
    async with AsyncSession(engine) as session:
        await session.execute(delete(LiveSession).where(LiveSession.id == rows.live.id))
        await session.execute(delete(Product).where(Product.id == rows.variant.product_id))
        await session.execute(delete(Household).where(Household.id == rows.household.id))
        await session.execute(delete(User).where(User.id.in_([rows.host.id, reviewer])))
        await session.commit()


async def _reserve_committed(
    engine: AsyncEngine, redis: Redis, rows: LiveRows, buyer: str, clock: MovableClock
) -> str:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with UnitOfWork(maker, RecordingSender()) as uow:
        service = LivestreamService(uow, redis, clock)
        try:
            await service.reserve_item(
                item_id=rows.item.id, buyer_key=buyer, quantity=1, now=clock.now
            )
        except MarketplaceError as error:
            return error.code
        await uow.commit()
        return "held"


@pytest.mark.concurrency
async def test_forty_buyers_at_once_never_take_more_than_the_item_has(
    engine: AsyncEngine, redis: Redis, committed: LiveRows, clock: MovableClock
) -> None:
    outcomes = await asyncio.gather(
        *(_reserve_committed(engine, redis, committed, f"facebook:{n}", clock) for n in range(40))
    )

    assert outcomes.count("held") == 10
    assert set(outcomes) == {"held", "sold_out"}
    async with AsyncSession(engine) as session:
        left = await session.scalar(
            select(LiveItem.available).where(LiveItem.id == committed.item.id)
        )
        variant_left = await session.scalar(
            select(Variant.available).where(Variant.id == committed.variant.id)
        )
    assert left == 0
    assert variant_left == 30


@pytest.mark.concurrency
async def test_one_buyer_commenting_ten_times_at_once_gets_the_limit_and_no_more(
    engine: AsyncEngine, redis: Redis, committed: LiveRows, clock: MovableClock
) -> None:
    outcomes = await asyncio.gather(
        *(_reserve_committed(engine, redis, committed, BUYER, clock) for _ in range(10))
    )

    assert outcomes.count("held") == 3
    assert outcomes.count("limit_reached") == 7
    async with AsyncSession(engine) as session:
        counted = await session.scalar(
            select(BuyerCount.quantity).where(BuyerCount.item_id == committed.item.id)
        )
        left = await session.scalar(
            select(LiveItem.available).where(LiveItem.id == committed.item.id)
        )
    assert counted == 3
    assert left == 7
