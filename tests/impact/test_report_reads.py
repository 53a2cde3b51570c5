"""The officials' read paths (one statement per report): pages and totals over several months
and communes agree with the household-months, a status filter counts by the list's status,
and the place named is checked on what the statement found."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.impact.models import AreaMonth, HouseholdMonth
from marketplace.impact.service import ImpactService
from marketplace.sellers.models import Household, PovertyStatus
from tests.accounts.factories import auth_headers, create_user
from tests.impact.factories import create_product, household_line, refunded, settled
from tests.sellers.factories import HUE, HUONG_THUY, HUONG_TRA, add_review, create_household

FEBRUARY = datetime(2026, 2, 12, 3, 0, tzinfo=UTC)
MARCH = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
RANGE = {"month_from": "2026-01", "month_to": "2026-03"}


async def _sell(
    session: AsyncSession,
    impact: ImpactService,
    household: Household,
    amount: int,
    at: datetime = MARCH,
) -> None:
    product = await create_product(session, household=household)
    await impact.record_event(settled(household_line(household, product, amount), settled_at=at))
    await session.flush()


async def _headers(
    session: AsyncSession, level: JurisdictionLevel | None, code: str | None
) -> dict[str, str]:
    if level is None:
        return await auth_headers(session, await create_user(session, role=Role.ADMIN))
    user = await create_user(
        session, role=Role.OFFICIAL, jurisdiction_level=level, jurisdiction_code=code
    )
    return await auth_headers(session, user)


async def _every_page(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, Any], limit: int
) -> tuple[list[dict[str, Any]], set[int]]:
    items: list[dict[str, Any]] = []
    totals: set[int] = set()
    offset = 0
    while True:
        response = await client.get(
            "/api/impact/households",
            params={**params, "limit": limit, "offset": offset},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        totals.add(body["total"])
        if not body["items"]:
            return items, totals
        items.extend(body["items"])
        offset += limit


async def test_pages_of_a_commune_and_its_province_hold_every_household_month_once(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    tra = [await create_household(session, commune_code=HUONG_TRA) for _ in range(3)]
    thuy = [await create_household(session, commune_code=HUONG_THUY) for _ in range(2)]
    for n, household in enumerate(tra + thuy):
        await _sell(session, impact, household, 100_000 + n * 1_000, at=MARCH)
        if n % 2 == 0:
            await _sell(session, impact, household, 50_000, at=FEBRUARY)
    expected_tra = {(str(h.id), m) for i, h in enumerate(tra) for m in _months_sold(i)}
    expected_thuy = {(str(h.id), m) for i, h in enumerate(thuy, 3) for m in _months_sold(i)}

    commune, commune_totals = await _every_page(
        client, await _headers(session, JurisdictionLevel.COMMUNE, HUONG_TRA), RANGE, limit=2
    )
    province, province_totals = await _every_page(
        client,
        await _headers(session, JurisdictionLevel.PROVINCE, HUE),
        {**RANGE, "province_code": HUE},
        limit=3,
    )

    assert [(i["household_id"], i["month"]) for i in commune] == sorted(
        expected_tra, key=lambda k: (k[1], k[0]), reverse=True
    )
    assert commune_totals == {len(expected_tra)}
    assert {(i["household_id"], i["month"]) for i in province} == expected_tra | expected_thuy
    assert len(province) == len(expected_tra | expected_thuy)
    assert province_totals == {len(province)}
    assert all(i["household_name"] for i in commune + province)


def _months_sold(n: int) -> list[str]:
    return ["2026-03", "2026-02"] if n % 2 == 0 else ["2026-03"]


async def test_the_total_without_a_filter_is_the_count_of_household_months_with_sales(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    household = await create_household(session, status=PovertyStatus.NOT_POOR)
    unreviewed = await create_household(session, status=None)
    refunded_one = await create_household(session, commune_code=HUONG_TRA)
    await _sell(session, impact, household, 120_000)
    await _sell(session, impact, unreviewed, 30_000)
    product = await create_product(session, household=refunded_one)
    line = household_line(refunded_one, product, 80_000)
    sale = settled(line, settled_at=MARCH)
    await impact.record_event(sale)
    await impact.record_event(refunded(sale, {line.order_line_id: 80_000}))
    await session.flush()
    headers = await _headers(session, JurisdictionLevel.COMMUNE, HUONG_TRA)

    response = await client.get("/api/impact/households", params=RANGE, headers=headers)

    counted = await session.scalar(
        select(func.count())
        .select_from(HouseholdMonth)
        .where(
            HouseholdMonth.commune_code == HUONG_TRA,
            HouseholdMonth.month.between(date(2026, 1, 1), date(2026, 3, 1)),
            HouseholdMonth.revenue_amount > 0,
        )
    )
    body = response.json()
    assert body["total"] == counted == len(body["items"])
    ids = {i["household_id"] for i in body["items"]}
    assert {str(household.id), str(unreviewed.id)} <= ids
    assert str(refunded_one.id) not in ids  # fully refunded: no sales that month


async def test_a_status_filter_counts_a_household_reviewed_mid_month_once_by_its_status(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    household = await create_household(
        session, status=PovertyStatus.POOR, review_date=date(2025, 12, 15)
    )
    await _sell(session, impact, household, 100_000, at=datetime(2026, 3, 5, 3, tzinfo=UTC))
    await add_review(
        session, household, status=PovertyStatus.NEAR_POOR, review_date=date(2026, 3, 8)
    )
    await _sell(session, impact, household, 60_000, at=datetime(2026, 3, 20, 3, tzinfo=UTC))
    headers = await _headers(session, JurisdictionLevel.COMMUNE, HUONG_TRA)

    poor = await client.get(
        "/api/impact/households", params={**RANGE, "status": "poor"}, headers=headers
    )
    near = await client.get(
        "/api/impact/households", params={**RANGE, "status": "near_poor"}, headers=headers
    )

    area = await session.scalar(
        select(AreaMonth).where(
            AreaMonth.level == "commune",
            AreaMonth.code == HUONG_TRA,
            AreaMonth.month == date(2026, 3, 1),
        )
    )
    assert area is not None
    assert (area.households_poor, area.households_near_poor) == (1, 1)  # in both groups
    assert (poor.json()["total"], poor.json()["items"]) == (0, [])  # listed by its status
    [item] = near.json()["items"]
    assert near.json()["total"] == 1
    assert (item["household_id"], item["status"], item["revenue_amount"]) == (
        str(household.id),
        "near_poor",
        160_000,
    )


async def test_a_page_past_the_end_is_empty_but_keeps_the_total(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    await _sell(session, impact, await create_household(session), 90_000)
    headers = await _headers(session, JurisdictionLevel.COMMUNE, HUONG_TRA)

    response = await client.get(
        "/api/impact/households", params={**RANGE, "offset": 500}, headers=headers
    )

    assert response.status_code == 200
    assert response.json()["items"] == []
    assert response.json()["total"] >= 1


async def test_an_admin_lists_every_place_by_id_and_a_province_without_names(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    household = await create_household(session, commune_code=HUONG_THUY, head_name="Lê Thị Na")
    await _sell(session, impact, household, 70_000)
    headers = await _headers(session, None, None)

    everywhere, _ = await _every_page(client, headers, RANGE, limit=200)
    province, _ = await _every_page(client, headers, {**RANGE, "province_code": "46"}, limit=200)

    for items in (everywhere, province):
        [item] = [i for i in items if i["household_id"] == str(household.id)]
        assert (item["household_name"], item["commune_code"]) == (None, HUONG_THUY)


async def test_codes_are_read_as_the_geo_tables_store_them(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    household = await create_household(session, commune_code=HUONG_TRA)
    await _sell(session, impact, household, 40_000)
    headers = await _headers(session, JurisdictionLevel.PROVINCE, HUE)

    summary = await client.get("/api/impact/provinces/ 46 /summary", params=RANGE, headers=headers)
    listed = await client.get(
        "/api/impact/households", params={**RANGE, "province_code": " 46"}, headers=headers
    )

    assert summary.status_code == 200, summary.text
    assert (summary.json()["code"], summary.json()["months"][-1]["revenue_amount"]) == (
        HUE,
        40_000,
    )
    assert str(household.id) in {i["household_id"] for i in listed.json()["items"]}


async def test_a_province_official_is_refused_a_commune_of_another_province_by_code(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = await _headers(session, JurisdictionLevel.PROVINCE, "92")

    listed = await client.get(
        "/api/impact/households", params={"commune_code": HUONG_TRA}, headers=headers
    )
    mismatched = await client.get(
        "/api/impact/households",
        params={"commune_code": HUONG_TRA, "province_code": "92"},
        headers=headers,
    )

    assert listed.status_code == 403
    assert mismatched.status_code == 403
    assert mismatched.json()["detail"] == "the commune is not in that province"
