"""The whole demo in one unit of work: accounts, households, products and a scheduled
livestream of a verified host; seeding twice creates nothing new."""

from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import User
from marketplace.catalog.certificates import VIETNAM, vietnam_today
from marketplace.catalog.models import Product
from marketplace.db import utcnow
from marketplace.demo import DEMO_ACCOUNTS, seed_demo
from marketplace.livestreams.models import HostVerification, LiveItem, LiveSession
from marketplace.sellers.models import Household
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

PASSWORDS = {account.login: f"demo-test-{i:02d}-pw" for i, account in enumerate(DEMO_ACCOUNTS)}


async def _count(session: AsyncSession, model: type[object]) -> int:
    return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_the_demo_schedules_a_livestream_of_the_huong_tra_fruit_for_tomorrow_evening(
    uow: UnitOfWork, settings: Settings
) -> None:
    report = await seed_demo(uow, settings, PASSWORDS)

    live = report.livestream
    assert live is not None
    assert live.created
    assert live.host_verified_now
    row = await uow.session.get(LiveSession, live.session_id)
    assert row is not None
    assert (row.title, row.platform, row.status) == (
        "Phiên live trái cây Hương Trà",
        "facebook",
        "scheduled",
    )
    local_start = row.scheduled_start_at.astimezone(VIETNAM)
    assert local_start.date() == vietnam_today(utcnow()) + timedelta(days=1)
    assert local_start.time() == time(19, 0)
    assert row.scheduled_end_at - row.scheduled_start_at == timedelta(minutes=90)
    assert row.hold_seconds == 15 * 60
    assert "chốt" in row.rules_text
    items = (await uow.session.scalars(select(LiveItem).where(LiveItem.session_id == row.id))).all()
    assert sorted((i.code, i.live_price_amount, i.stock_cap) for i in items) == [
        ("BUOI1", 165_000, 15),
        ("CAM1", 159_000, 20),
        ("QUYT1", 149_000, 20),
    ]
    assert f"Livestream: Phiên live trái cây Hương Trà, {local_start:%Y-%m-%d} 19:00" in (
        report.render()
    )


async def test_seeding_the_demo_twice_creates_nothing_new(
    uow: UnitOfWork, settings: Settings
) -> None:
    first = await seed_demo(uow, settings, PASSWORDS)
    session = uow.session
    counts = {
        model: await _count(session, model)
        for model in (User, Household, Product, LiveSession, LiveItem, HostVerification)
    }

    again = await seed_demo(uow, settings, PASSWORDS)

    assert first.created > 0
    assert counts[Household] > 0
    assert counts[Product] == 8
    assert (counts[LiveSession], counts[LiveItem], counts[HostVerification]) == (1, 3, 1)
    assert again.created == 0
    assert again.livestream is not None
    assert first.livestream is not None
    assert not again.livestream.created
    assert again.livestream.session_id == first.livestream.session_id
    assert sorted(again.livestream.item_codes) == sorted(first.livestream.item_codes)
    for model, count in counts.items():
        assert await _count(session, model) == count, model.__name__
