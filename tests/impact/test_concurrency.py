"""Concurrent deliveries with real commits: an event delivered twice at once is attributed
once, and two sales of one household in one month both reach the aggregates."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.db import create_sessionmaker
from marketplace.impact.events import PaymentSettled, SettledLine
from marketplace.impact.models import AreaMonth, AttributionEntry, HouseholdMonth
from marketplace.impact.service import ImpactService, RecordResult
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.impact.factories import create_product, settled
from tests.sellers.factories import THOI_LAI, create_household
from tests.support.jobs import RecordingSender

pytestmark = pytest.mark.concurrency


@dataclass
class Committed:
    maker: async_sessionmaker[AsyncSession]
    households: list[uuid.UUID] = field(default_factory=list)


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[Committed]:
    """A sessionmaker whose commits are real; every impact row and household this test
    made is removed afterwards (the ledger's append-only trigger lifted for that only)."""
    state = Committed(create_sessionmaker(engine))
    yield state
    made = state.households
    async with state.maker() as session, session.begin():
        await session.execute(text("SET LOCAL marketplace.ledger_maintenance = 'on'"))
        ids = {"ids": made}
        await session.execute(
            text(
                "DELETE FROM attribution_events WHERE order_id IN (SELECT order_id FROM "
                "attribution_entries WHERE household_id = ANY(:ids))"
            ),
            ids,
        )
        await session.execute(
            text("DELETE FROM attribution_entries WHERE household_id = ANY(:ids)"), ids
        )
        await session.execute(
            text("DELETE FROM household_month_impact WHERE household_id = ANY(:ids)"), ids
        )
        await session.execute(
            text("DELETE FROM area_month_impact WHERE code = :c"), {"c": THOI_LAI}
        )
        await session.execute(
            text("DELETE FROM area_month_impact WHERE level = 'province' AND code = '92'")
        )
        await session.execute(text("DELETE FROM products WHERE household_id = ANY(:ids)"), ids)
        await session.execute(
            text("DELETE FROM household_status_entries WHERE household_id = ANY(:ids)"), ids
        )
        await session.execute(text("DELETE FROM households WHERE id = ANY(:ids)"), ids)


async def _seller(committed: Committed) -> tuple[uuid.UUID, uuid.UUID]:
    async with committed.maker() as session, session.begin():
        household = await create_household(session, commune_code=THOI_LAI)
        product = await create_product(session, household=household)
        committed.households.append(household.id)
        return household.id, product.id


async def _deliver(
    maker: async_sessionmaker[AsyncSession], settings: Settings, event: PaymentSettled
) -> RecordResult:
    async with UnitOfWork(maker, RecordingSender()) as uow:
        result = await ImpactService(uow, settings).record_event(event)
        await uow.commit()
        return result


def _event(household_id: uuid.UUID, product_id: uuid.UUID, amount: int) -> PaymentSettled:
    return settled(
        SettledLine(
            order_line_id=uuid.uuid4(),
            net_amount=amount,
            gross_amount=amount,
            fee_amount=0,
            product_id=product_id,
            category="fruit",
            household_id=household_id,
        )
    )


async def test_two_concurrent_deliveries_of_one_event_attribute_it_once(
    committed: Committed, settings: Settings
) -> None:
    household_id, product_id = await _seller(committed)
    event = _event(household_id, product_id, 350_000)

    results = await asyncio.gather(
        _deliver(committed.maker, settings, event), _deliver(committed.maker, settings, event)
    )

    assert sorted(r.already_recorded for r in results) == [False, True]
    async with committed.maker() as session:
        total = await session.scalar(
            select(func.sum(AttributionEntry.amount)).where(
                AttributionEntry.household_id == household_id
            )
        )
        month = await session.scalar(
            select(HouseholdMonth.revenue_amount).where(HouseholdMonth.household_id == household_id)
        )
    assert (total, month) == (350_000, 350_000)


async def test_concurrent_sales_of_one_household_month_all_reach_the_aggregates(
    committed: Committed, settings: Settings
) -> None:
    household_id, product_id = await _seller(committed)
    events = [_event(household_id, product_id, 10_000 * (i + 1)) for i in range(6)]

    await asyncio.gather(*(_deliver(committed.maker, settings, e) for e in events))

    expected = sum(10_000 * (i + 1) for i in range(6))
    async with committed.maker() as session:
        month = await session.scalar(
            select(HouseholdMonth).where(HouseholdMonth.household_id == household_id)
        )
        commune = await session.scalar(
            select(AreaMonth).where(
                AreaMonth.level == "commune",
                AreaMonth.code == THOI_LAI,
                AreaMonth.month == date(2026, 3, 1),
            )
        )
    assert month is not None
    assert commune is not None
    assert month.revenue_amount == expected
    assert (commune.revenue_amount, commune.households_selling) == (expected, 1)
