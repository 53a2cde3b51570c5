"""record_event: each settled đồng attributed once, to the right household, as it stood on
the day of sale; refunds reverse exactly what they refund."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.impact.errors import (
    CannotAttribute,
    InvalidSettlementEvent,
    RefundExceedsAttribution,
)
from marketplace.impact.events import RefundedLine, SettledLine
from marketplace.impact.models import AreaMonth, AttributionEntry, HouseholdMonth
from marketplace.impact.service import ImpactService
from marketplace.sellers.models import PovertyStatus
from tests.impact.factories import (
    cooperative_line,
    create_cooperative_lot,
    create_product,
    household_line,
    refunded,
    settled,
)
from tests.sellers.factories import (
    HUONG_TRA,
    PHONG_DIEN,
    add_review,
    create_cooperative,
    create_household,
)


async def _entries(session: AsyncSession, order_id: uuid.UUID) -> list[AttributionEntry]:
    result = await session.execute(
        select(AttributionEntry)
        .where(AttributionEntry.order_id == order_id)
        .order_by(AttributionEntry.kind.desc(), AttributionEntry.amount.desc())
    )
    return list(result.scalars().all())


async def _by_household(session: AsyncSession, order_id: uuid.UUID) -> dict[uuid.UUID, int]:
    result = await session.execute(
        select(AttributionEntry.household_id, func.sum(AttributionEntry.amount))
        .where(AttributionEntry.order_id == order_id)
        .group_by(AttributionEntry.household_id)
    )
    return {h: int(total) for h, total in result}


async def test_a_household_line_attributes_its_net_amount_with_the_day_of_sale_facts(
    session: AsyncSession, impact: ImpactService
) -> None:
    household = await create_household(
        session, status=PovertyStatus.POOR, commune_code=PHONG_DIEN, members_count=5
    )
    await add_review(
        session,
        household,
        status=PovertyStatus.POOR,
        review_date=date(2026, 1, 5),
        income_per_person_month=1_200_000,
    )
    product = await create_product(session, household=household, name="Bưởi da xanh")
    # 20:30 UTC on 31 March is 03:30 on 1 April in Vietnam: the sale counts in April.
    event = settled(
        household_line(household, product, 475_000, fee_amount=25_000),
        settled_at=datetime(2026, 3, 31, 20, 30, tzinfo=UTC),
    )

    result = await impact.record_event(event)

    assert (result.entries, result.amount_total, result.already_recorded) == (1, 475_000, False)
    [entry] = await _entries(session, event.order_id)
    assert entry.household_id == household.id
    assert entry.amount == 475_000
    assert entry.poverty_status == "poor"
    assert entry.income_per_person_month == 1_200_000
    assert entry.members_count == 5
    assert (entry.commune_code, entry.province_code, entry.admin_version) == (
        PHONG_DIEN,
        household.province_code,
        "2025-07",
    )
    assert entry.area == "rural"
    assert entry.sale_date == date(2026, 4, 1)
    assert entry.category == "fruit"


async def test_a_cooperative_line_is_split_exactly_by_the_members_contributions(
    session: AsyncSession, impact: ImpactService
) -> None:
    a, b, c = [await create_household(session) for _ in range(3)]
    cooperative = await create_cooperative(session, members=[a, b, c])
    product = await create_product(session, cooperative=cooperative, name="Thanh trà")
    # 120 kg, 45 kg and 35 kg of a 1,000,001 đồng line: exact shares 600000.6, 225000.225
    # and 175000.175; the left-over đồng goes to the largest remainder (a).
    lot = await create_cooperative_lot(session, cooperative, product, [(a, 120), (b, 45), (c, 35)])
    event = settled(cooperative_line(cooperative, product, lot, 1_000_001))

    await impact.record_event(event)

    shares = await _by_household(session, event.order_id)
    assert shares == {a.id: 600_001, b.id: 225_000, c.id: 175_000}
    assert sum(shares.values()) == 1_000_001
    rows = await _entries(session, event.order_id)
    assert {r.cooperative_id for r in rows} == {cooperative.id}
    assert {r.lot_id for r in rows} == {lot.id}


async def test_equal_contributions_give_the_extra_dong_to_the_smaller_household_id(
    session: AsyncSession, impact: ImpactService
) -> None:
    members = [await create_household(session) for _ in range(3)]
    cooperative = await create_cooperative(session, members=members)
    product = await create_product(session, cooperative=cooperative)
    lot = await create_cooperative_lot(session, cooperative, product, [(m, 10) for m in members])
    event = settled(cooperative_line(cooperative, product, lot, 100))

    await impact.record_event(event)

    shares = await _by_household(session, event.order_id)
    first, second, third = sorted(m.id for m in members)
    assert shares == {first: 34, second: 33, third: 33}


async def test_the_same_event_delivered_twice_is_attributed_once(
    session: AsyncSession, impact: ImpactService
) -> None:
    household = await create_household(session)
    product = await create_product(session, household=household)
    event = settled(household_line(household, product, 300_000))

    first = await impact.record_event(event)
    second = await impact.record_event(event)

    assert (first.already_recorded, second.already_recorded) == (False, True)
    assert await _by_household(session, event.order_id) == {household.id: 300_000}
    month = await session.scalar(
        select(HouseholdMonth.revenue_amount).where(HouseholdMonth.household_id == household.id)
    )
    assert month == 300_000


async def test_the_status_recorded_is_the_one_in_force_on_the_day_of_sale(
    session: AsyncSession, impact: ImpactService
) -> None:
    household = await create_household(
        session, status=PovertyStatus.POOR, review_date=date(2025, 12, 15)
    )
    await add_review(
        session, household, status=PovertyStatus.NEAR_POOR, review_date=date(2026, 6, 20)
    )
    product = await create_product(session, household=household)
    before = settled(
        household_line(household, product, 100_000),
        settled_at=datetime(2026, 6, 19, 16, 59, tzinfo=UTC),  # 23:59 on 19 June in Vietnam
    )
    on_review_day = settled(
        household_line(household, product, 100_000),
        settled_at=datetime(2026, 6, 19, 17, 0, tzinfo=UTC),  # 00:00 on 20 June in Vietnam
    )

    await impact.record_event(before)
    await impact.record_event(on_review_day)

    [first] = await _entries(session, before.order_id)
    [second] = await _entries(session, on_review_day.order_id)
    assert (first.poverty_status, second.poverty_status) == ("poor", "near_poor")


async def test_a_household_without_any_review_is_recorded_as_unreviewed(
    session: AsyncSession, impact: ImpactService
) -> None:
    household = await create_household(session, status=None)
    product = await create_product(session, household=household)
    event = settled(household_line(household, product, 90_000))

    await impact.record_event(event)

    [entry] = await _entries(session, event.order_id)
    assert entry.poverty_status == "unreviewed"
    assert entry.income_per_person_month is None


async def test_a_household_that_left_poverty_within_three_years_counts_as_newly_escaped(
    session: AsyncSession, impact: ImpactService
) -> None:
    household = await create_household(
        session, status=PovertyStatus.POOR, review_date=date(2024, 12, 10)
    )
    await add_review(
        session, household, status=PovertyStatus.NOT_POOR, review_date=date(2025, 12, 10)
    )
    product = await create_product(session, household=household)
    event = settled(household_line(household, product, 50_000))

    await impact.record_event(event)

    [entry] = await _entries(session, event.order_id)
    assert entry.poverty_status == "newly_escaped"


async def test_a_full_refund_of_a_cooperative_line_reverses_every_household_to_zero(
    session: AsyncSession, impact: ImpactService
) -> None:
    a, b, c = [await create_household(session) for _ in range(3)]
    cooperative = await create_cooperative(session, members=[a, b, c])
    product = await create_product(session, cooperative=cooperative)
    lot = await create_cooperative_lot(session, cooperative, product, [(a, 7), (b, 5), (c, 1)])
    line = cooperative_line(cooperative, product, lot, 999_999)
    sale = settled(line)
    await impact.record_event(sale)

    await impact.record_event(refunded(sale, {line.order_line_id: 999_999}))

    assert await _by_household(session, sale.order_id) == {a.id: 0, b.id: 0, c.id: 0}


async def test_partial_refunds_split_like_the_sale_and_never_reverse_more_than_was_attributed(
    session: AsyncSession, impact: ImpactService
) -> None:
    a, b, c = [await create_household(session) for _ in range(3)]
    cooperative = await create_cooperative(session, members=[a, b, c])
    product = await create_product(session, cooperative=cooperative)
    lot = await create_cooperative_lot(session, cooperative, product, [(a, 6), (b, 6), (c, 2)])
    line = cooperative_line(cooperative, product, lot, 140_000)
    sale = settled(line)
    await impact.record_event(sale)
    original = await _by_household(session, sale.order_id)
    assert original == {a.id: 60_000, b.id: 60_000, c.id: 20_000}

    first = refunded(sale, {line.order_line_id: 10_001})
    await impact.record_event(first)
    refund_rows = {
        e.household_id: e.amount
        for e in await _entries(session, sale.order_id)
        if e.event_id == first.event_id
    }
    # Exact shares of 10,001 by 6:6:2 are 4286.14, 4286.14, 1428.71: the two left-over
    # đồng go to the largest remainder (c) and then to the earlier of the equal ones.
    first_of_ab = min(a.id, b.id)
    second_of_ab = max(a.id, b.id)
    assert refund_rows == {first_of_ab: -4_286, second_of_ab: -4_286, c.id: -1_429}
    assert sum(refund_rows.values()) == -10_001

    await impact.record_event(refunded(sale, {line.order_line_id: 129_999}))

    assert await _by_household(session, sale.order_id) == {a.id: 0, b.id: 0, c.id: 0}
    entries = await _entries(session, sale.order_id)
    assert all(e.sale_date == entries[0].sale_date for e in entries)


async def test_a_refund_larger_than_what_is_left_is_refused_and_writes_nothing(
    session: AsyncSession, impact: ImpactService
) -> None:
    household = await create_household(session)
    product = await create_product(session, household=household)
    line = household_line(household, product, 200_000)
    sale = settled(line)
    await impact.record_event(sale)

    with pytest.raises(RefundExceedsAttribution):
        await impact.record_event(refunded(sale, {line.order_line_id: 200_001}))

    assert await _by_household(session, sale.order_id) == {household.id: 200_000}


async def test_a_refund_of_a_line_never_attributed_cannot_be_attributed(
    impact: ImpactService,
) -> None:
    from marketplace.impact.events import PaymentRefunded  # noqa: PLC0415

    event = PaymentRefunded(
        event_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        refunded_at=datetime(2026, 3, 12, tzinfo=UTC),
        lines=(RefundedLine(order_line_id=uuid.uuid4(), net_amount=1_000),),
    )
    with pytest.raises(CannotAttribute):
        await impact.record_event(event)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"net_amount": -1}, id="negative-amount"),
        pytest.param({"household_id": None}, id="no-seller"),
        pytest.param({"cooperative_id": uuid.uuid4()}, id="two-sellers"),
        pytest.param({"gross_amount": 1}, id="net-above-gross"),
    ],
)
async def test_a_malformed_event_is_refused_before_anything_is_written(
    session: AsyncSession, impact: ImpactService, change: dict[str, object]
) -> None:
    household = await create_household(session)
    product = await create_product(session, household=household)
    good = household_line(household, product, 10_000)
    fields = {f: getattr(good, f) for f in SettledLine.__struct_fields__}
    bad = SettledLine(**{**fields, **change})  # type: ignore[arg-type]
    event = settled(bad)

    with pytest.raises(InvalidSettlementEvent):
        await impact.record_event(event)

    count = await session.scalar(select(func.count()).select_from(AttributionEntry))
    assert count == 0


async def test_a_cooperative_lot_without_contributions_cannot_be_attributed(
    session: AsyncSession, impact: ImpactService
) -> None:
    cooperative = await create_cooperative(session)
    product = await create_product(session, cooperative=cooperative)
    lot = await create_cooperative_lot(session, cooperative, product, [])

    with pytest.raises(CannotAttribute):
        await impact.record_event(settled(cooperative_line(cooperative, product, lot, 10_000)))


async def test_the_ledger_refuses_updates_and_deletes(
    session: AsyncSession, impact: ImpactService
) -> None:
    household = await create_household(session)
    product = await create_product(session, household=household)
    event = settled(household_line(household, product, 10_000))
    await impact.record_event(event)
    await impact._uow.session.flush()

    for statement in (
        "UPDATE attribution_entries SET amount = 1",
        "DELETE FROM attribution_entries",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(text(statement))


async def test_the_month_figures_and_area_aggregates_follow_sales_and_refunds(
    session: AsyncSession, impact: ImpactService
) -> None:
    # Rural line 1,500,000 đồng (07/2021). Baseline 1,400,000 per person, 2 members.
    household = await create_household(
        session, status=None, commune_code=PHONG_DIEN, members_count=2
    )
    await add_review(
        session,
        household,
        status=PovertyStatus.NEAR_POOR,
        review_date=date(2026, 1, 10),
        income_per_person_month=1_400_000,
    )
    product = await create_product(session, household=household)
    line = household_line(household, product, 600_000)
    sale = settled(line)
    await impact.record_event(sale)

    month = await session.scalar(
        select(HouseholdMonth).where(HouseholdMonth.household_id == household.id)
    )
    assert month is not None
    # 600,000 x 40% = 240,000 income; / 2 members = 120,000 per person.
    assert (month.revenue_amount, month.income_amount, month.uplift_per_person) == (
        600_000,
        240_000,
        120_000,
    )
    assert (month.poverty_line, month.gap_before, month.gap_after, month.closes_gap) == (
        1_500_000,
        100_000,
        0,
        True,
    )
    commune = await session.scalar(
        select(AreaMonth).where(
            AreaMonth.level == "commune",
            AreaMonth.code == PHONG_DIEN,
            AreaMonth.month == date(2026, 3, 1),
        )
    )
    assert commune is not None
    assert (commune.households_selling, commune.households_near_poor) == (1, 1)
    assert (commune.revenue_near_poor, commune.households_closing_gap) == (600_000, 1)

    await impact.record_event(refunded(sale, {line.order_line_id: 600_000}))
    await session.refresh(commune)
    await session.refresh(month)

    assert (month.revenue_amount, month.closes_gap) == (0, False)
    assert (commune.households_selling, commune.households_near_poor) == (0, 0)
    assert (commune.revenue_amount, commune.households_closing_gap) == (0, 0)


async def test_the_aggregates_of_a_province_add_up_its_communes(
    session: AsyncSession, impact: ImpactService
) -> None:
    urban = await create_household(session, commune_code=HUONG_TRA)
    rural = await create_household(session, commune_code=PHONG_DIEN)
    for household, amount in ((urban, 100_000), (rural, 250_000)):
        product = await create_product(session, household=household)
        await impact.record_event(settled(household_line(household, product, amount)))

    rows = (
        await session.execute(select(AreaMonth).where(AreaMonth.month == date(2026, 3, 1)))
    ).scalars()
    by_key = {(r.level, r.code): r.revenue_amount for r in rows}
    assert by_key[("commune", HUONG_TRA)] == 100_000
    assert by_key[("province", urban.province_code)] == 100_000
    assert by_key[("commune", PHONG_DIEN)] == 250_000
    assert by_key[("province", rural.province_code)] == 250_000
