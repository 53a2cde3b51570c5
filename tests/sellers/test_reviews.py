"""Officials record review decisions; the figures' classification sits next to the decision;
status on a day, its history, and the bulk look-ups other domains use."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.db import utcnow
from marketplace.sellers.models import HouseholdStatusEntry, PovertyStatus
from marketplace.sellers.policy import vietnam_today
from marketplace.sellers.service import SellersService
from tests.sellers.factories import (
    CAN_THO,
    HUE,
    HUONG_THUY,
    HUONG_TRA,
    PHONG_DIEN,
    MakeCaller,
    add_review,
    create_cooperative,
    create_household,
)


def review(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "poor",
        "review_date": "2025-12-15",
        "decision_number": "1520/QĐ-UBND",
        "deciding_authority": "UBND Phường Hương Trà",
    }
    body.update(overrides)
    return body


async def entry_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(HouseholdStatusEntry)) or 0)


@pytest.mark.parametrize(
    ("commune", "province"),
    [pytest.param(HUONG_TRA, None, id="commune-official"), pytest.param(None, HUE, id="province")],
)
async def test_an_official_of_the_households_commune_or_province_records_a_review(
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    commune: str | None,
    province: str | None,
) -> None:
    official = await caller(Role.OFFICIAL, commune=commune, province=province)
    household = await create_household(session, status=None)

    response = await client.post(
        f"/api/households/{household.id}/reviews", json=review(), headers=official.headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "poor"
    assert body["standard_code"] == "07/2021/ND-CP"
    assert body["recorded_by_user_id"] == str(official.user.id)
    assert body["implied_classification"] is None
    assert body["mismatch"] is False


@pytest.mark.parametrize(
    ("role", "commune", "province"),
    [
        pytest.param(Role.OFFICIAL, HUONG_THUY, None, id="other-commune-official"),
        pytest.param(Role.OFFICIAL, None, CAN_THO, id="other-province-official"),
        pytest.param(Role.ADMIN, None, None, id="admin"),
        pytest.param(Role.FARMER, None, None, id="farmer"),
        pytest.param(Role.HELPER, None, None, id="helper"),
        pytest.param(Role.BUYER, None, None, id="buyer"),
    ],
)
async def test_no_one_else_records_a_review(
    *,
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    role: Role,
    commune: str | None,
    province: str | None,
) -> None:
    household = await create_household(session, status=None)
    headers = (await caller(role, commune=commune, province=province)).headers

    response = await client.post(
        f"/api/households/{household.id}/reviews", json=review(), headers=headers
    )

    assert response.status_code == 403
    assert await entry_count(session) == 0


async def test_a_review_dated_tomorrow_is_refused_and_today_accepted(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    household = await create_household(session, status=None)
    today = vietnam_today(utcnow())
    url = f"/api/households/{household.id}/reviews"

    tomorrow = await client.post(
        url,
        json=review(review_date=(today + timedelta(days=1)).isoformat()),
        headers=official.headers,
    )
    today_response = await client.post(
        url, json=review(review_date=today.isoformat()), headers=official.headers
    )

    assert tomorrow.status_code == 422
    assert tomorrow.json()["errors"] == [
        {"field": "review_date", "message": "must not be in the future"}
    ]
    assert today_response.status_code == 201
    assert await entry_count(session) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"review_date": "2021-12-31"}, "review_date", id="before-every-standard"),
        pytest.param({"standard_code": "59/2015/QD-TTg"}, "standard_code", id="unknown-standard"),
        pytest.param(
            {"standard_code": "351/2025/ND-CP"}, "standard_code", id="standard-not-yet-in-force"
        ),
        pytest.param(
            {"income_per_person_month": 1_200_000}, "deprived_indicators", id="income-alone"
        ),
        pytest.param({"deprived_indicators": 3}, "income_per_person_month", id="count-alone"),
        pytest.param(
            {"income_per_person_month": 1_200_000, "deprived_indicators": 13},
            "deprived_indicators",
            id="more-deprivations-than-indicators",
        ),
        pytest.param(
            {"income_per_person_month": -1, "deprived_indicators": 3},
            "income_per_person_month",
            id="negative-income",
        ),
        pytest.param(
            {"income_per_person_month": 1.5, "deprived_indicators": 3},
            "income_per_person_month",
            id="fractional-income",
        ),
        pytest.param({"status": "rich"}, "status", id="unknown-status"),
    ],
)
async def test_bad_review_fields_are_named_and_nothing_is_recorded(
    *,
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    overrides: dict[str, Any],
    field: str,
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    household = await create_household(session, status=None)

    response = await client.post(
        f"/api/households/{household.id}/reviews",
        json=review(**overrides),
        headers=official.headers,
    )

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await entry_count(session) == 0


@pytest.mark.parametrize(
    ("commune", "income", "deprived", "decided", "implied", "mismatch"),
    [
        pytest.param(PHONG_DIEN, 1_500_000, 3, "poor", "poor", False, id="rural-on-the-line"),
        pytest.param(PHONG_DIEN, 1_500_001, 5, "poor", "not_poor", True, id="rural-above-line"),
        pytest.param(PHONG_DIEN, 1_200_000, 2, "poor", "near_poor", True, id="too-few-deprived"),
        pytest.param(HUONG_TRA, 1_800_000, 1, "near_poor", "near_poor", False, id="urban-line"),
        pytest.param(HUONG_TRA, 2_500_000, 0, "newly_escaped", "not_poor", False, id="escaped"),
        pytest.param(HUONG_TRA, 1_900_000, 4, "not_poor", "poor", True, id="urban-poor"),
    ],
)
async def test_the_review_shows_the_implied_classification_and_flags_a_mismatch(
    *,
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    commune: str,
    income: int,
    deprived: int,
    decided: str,
    implied: str,
    mismatch: bool,
) -> None:
    official = await caller(Role.OFFICIAL, commune=commune)
    household = await create_household(session, status=None, commune_code=commune)

    response = await client.post(
        f"/api/households/{household.id}/reviews",
        json=review(status=decided, income_per_person_month=income, deprived_indicators=deprived),
        headers=official.headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["implied_classification"], body["mismatch"]) == (
        decided,
        implied,
        mismatch,
    )
    status = await client.get(f"/api/households/{household.id}/status", headers=official.headers)
    assert status.json()["status"] == decided  # the decision wins


async def test_the_status_endpoint_answers_for_a_given_day_with_newly_escaped(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    household = await create_household(
        session, status=PovertyStatus.POOR, review_date=date(2022, 12, 15)
    )
    await add_review(
        session, household, status=PovertyStatus.NOT_POOR, review_date=date(2024, 12, 16)
    )
    url = f"/api/households/{household.id}/status"

    poor = await client.get(url, params={"on": "2024-12-15"}, headers=official.headers)
    escaped = await client.get(url, params={"on": "2027-12-16"}, headers=official.headers)
    settled = await client.get(url, params={"on": "2027-12-17"}, headers=official.headers)
    before = await client.get(url, params={"on": "2020-01-01"}, headers=official.headers)

    assert (poor.json()["status"], poor.json()["newly_escaped"]) == ("poor", False)
    assert escaped.json() == {
        "household_id": str(household.id),
        "on": "2027-12-16",
        "status": "not_poor",
        "newly_escaped": True,
        "escaped_on": "2024-12-16",
        "review_date": "2024-12-16",
    }
    assert settled.json()["newly_escaped"] is False
    assert before.json()["status"] is None


async def test_the_history_hides_income_figures_from_a_cooperative_manager(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    official = await caller(Role.OFFICIAL, commune=HUONG_TRA)
    manager = await caller(Role.COOPERATIVE_MANAGER)
    household = await create_household(session, status=None)
    await create_cooperative(session, managers=[manager.user], members=[household])
    await add_review(
        session,
        household,
        status=PovertyStatus.POOR,
        review_date=date(2023, 12, 15),
        income_per_person_month=1_400_000,
        deprived_indicators=4,
    )
    await add_review(session, household, status=PovertyStatus.NEAR_POOR)
    url = f"/api/households/{household.id}/status-history"

    by_official = await client.get(url, headers=official.headers)
    by_manager = await client.get(url, headers=manager.headers)

    assert [e["status"] for e in by_official.json()] == ["poor", "near_poor"]
    assert by_official.json()[0]["income_per_person_month"] == 1_400_000
    assert [e["status"] for e in by_manager.json()] == ["poor", "near_poor"]
    assert by_manager.json()[0]["income_per_person_month"] is None
    assert by_manager.json()[0]["deprived_indicators"] is None


async def test_status_on_takes_the_latest_review_and_the_last_recorded_of_one_day(
    sellers: SellersService, session: AsyncSession
) -> None:
    household = await create_household(
        session, status=PovertyStatus.POOR, review_date=date(2023, 12, 15)
    )
    recorded = datetime(2024, 12, 20, tzinfo=UTC)
    await add_review(
        session,
        household,
        status=PovertyStatus.NOT_POOR,
        review_date=date(2024, 12, 15),
        created_at=recorded,
    )
    await add_review(
        session,
        household,
        status=PovertyStatus.NEAR_POOR,
        review_date=date(2024, 12, 15),
        created_at=recorded + timedelta(days=2),
    )

    assert await sellers.status_on(household.id, date(2023, 12, 14)) is None
    assert await sellers.status_on(household.id, date(2023, 12, 15)) is PovertyStatus.POOR
    assert await sellers.status_on(household.id, date(2024, 12, 15)) is PovertyStatus.NEAR_POOR


async def test_statuses_on_answers_for_many_households_in_one_call(
    sellers: SellersService, session: AsyncSession
) -> None:
    poor = await create_household(session, status=PovertyStatus.POOR)
    near = await create_household(session, status=PovertyStatus.NEAR_POOR)
    unreviewed = await create_household(session, status=None)
    unknown = uuid.uuid4()

    statuses = await sellers.statuses_on(
        [poor.id, near.id, unreviewed.id, unknown], date(2026, 1, 1)
    )

    assert statuses == {
        poor.id: PovertyStatus.POOR,
        near.id: PovertyStatus.NEAR_POOR,
        unreviewed.id: None,
        unknown: None,
    }
    assert await sellers.statuses_on([], date(2026, 1, 1)) == {}
