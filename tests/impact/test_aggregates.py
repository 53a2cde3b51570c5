"""The aggregates kept incrementally by record_event equal a rebuild from the ledger, after a
mix of household and cooperative sales, partial and full refunds, across months and places;
and the worker task bodies run."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.impact.figures import AREA_COUNTERS
from marketplace.impact.models import AreaMonth, HouseholdMonth
from marketplace.impact.service import ImpactService
from marketplace.sellers.models import PovertyStatus
from marketplace.settings import Settings
from tests.impact.factories import (
    cooperative_line,
    create_cooperative_lot,
    create_product,
    household_line,
    refunded,
    settled,
)
from tests.sellers.factories import (
    HUONG_THUY,
    HUONG_TRA,
    PHONG_DIEN,
    add_review,
    create_cooperative,
    create_household,
)
from tests.support.jobs import RecordingSender
from workers import impact as impact_tasks
from workers.runtime import WorkerContext

HOUSEHOLD_COLUMNS = (
    "commune_code",
    "status",
    "members_count",
    "revenue_amount",
    "revenue_poor",
    "revenue_near_poor",
    "revenue_not_poor",
    "income_amount",
    "uplift_per_person",
    "poverty_line",
    "baseline_income_per_person",
    "gap_before",
    "gap_after",
    "closes_gap",
)


async def _snapshot(session: AsyncSession) -> tuple[dict[Any, Any], dict[Any, Any]]:
    session.expire_all()
    months = {
        (h.household_id, h.month): tuple(getattr(h, c) for c in HOUSEHOLD_COLUMNS)
        for h in (await session.execute(select(HouseholdMonth))).scalars()
        if h.revenue_amount or h.commune_code
    }
    areas = {
        (a.level, a.code, a.month): (
            *(getattr(a, c) for c in AREA_COUNTERS),
            a.median_uplift_per_person,
        )
        for a in (await session.execute(select(AreaMonth))).scalars()
        if any(getattr(a, c) for c in AREA_COUNTERS)
    }
    return months, areas


async def test_incremental_aggregates_equal_a_rebuild_from_the_ledger(
    session: AsyncSession, impact: ImpactService
) -> None:
    rng = random.Random(7)
    households = []
    for n, commune in enumerate([HUONG_TRA, HUONG_THUY, PHONG_DIEN] * 3):
        household = await create_household(
            session,
            commune_code=commune,
            status=[PovertyStatus.POOR, PovertyStatus.NEAR_POOR, PovertyStatus.NOT_POOR][n % 3],
            members_count=1 + n % 5,
        )
        if n % 2:
            await add_review(
                session,
                household,
                status=PovertyStatus.POOR,
                review_date=datetime(2026, 2, 1, tzinfo=UTC).date(),
                income_per_person_month=1_000_000 + 150_000 * n,
            )
        households.append(household)
    cooperative = await create_cooperative(session, members=households[:4])
    coop_product = await create_product(session, cooperative=cooperative)
    lot = await create_cooperative_lot(
        session, cooperative, coop_product, [(h, 3 + i) for i, h in enumerate(households[:4])]
    )
    products = {h.id: await create_product(session, household=h) for h in households}

    for _ in range(40):
        at = datetime(2026, rng.randint(1, 4), rng.randint(1, 28), rng.randint(0, 23), tzinfo=UTC)
        if rng.random() < 0.3:
            line = cooperative_line(cooperative, coop_product, lot, rng.randint(10_000, 900_000))
        else:
            household = rng.choice(households)
            line = household_line(household, products[household.id], rng.randint(5_000, 700_000))
        sale = settled(line, settled_at=at)
        await impact.record_event(sale)
        if rng.random() < 0.4:
            part = rng.choice([line.net_amount, line.net_amount // 3 + 1])
            await impact.record_event(refunded(sale, {line.order_line_id: part}))
    await impact._uow.session.flush()
    incremental = await _snapshot(session)

    await impact.rebuild_aggregates()
    await impact._uow.session.flush()
    rebuilt = await _snapshot(session)

    assert incremental[0] == rebuilt[0]
    assert incremental[1] == rebuilt[1]
    assert len(incremental[1]) > 6
    report = await impact.reconcile({})
    assert report.aggregate_mismatches == 0


async def test_the_worker_bodies_rebuild_and_reconcile_against_the_sellers_ledger(
    session: AsyncSession,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    household = await create_household(session)
    product = await create_product(session, household=household)
    context = WorkerContext(
        settings=settings, sessionmaker=sessionmaker, redis=redis, job_sender=RecordingSender()
    )
    async with context.unit_of_work() as uow:
        await ImpactService(uow, settings).record_event(
            settled(household_line(household, product, 70_000))
        )
        await uow.commit()

    rebuilt = await impact_tasks.rebuild(context)
    mismatches = await impact_tasks.reconcile(context)

    assert rebuilt >= 1
    # The sale went straight to impact, never through payments: the sellers' ledger lacks it.
    assert mismatches == 1
    month = await session.scalar(
        select(HouseholdMonth.revenue_amount).where(HouseholdMonth.household_id == household.id)
    )
    assert month == 70_000
