"""Officials' reports: figures from the aggregates, jurisdiction enforced (403, never an
empty page), names only inside the jurisdiction, bad ranges and places refused; the public
page hides groups under 5 households; income shares validated."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.impact.models import IncomeShare
from marketplace.impact.service import ImpactService
from marketplace.sellers.models import Household, PovertyStatus
from tests.accounts.factories import auth_headers, create_user
from tests.impact.factories import create_product, household_line, settled
from tests.sellers.factories import HUE, HUONG_THUY, HUONG_TRA, PHONG_DIEN, create_household

MARCH = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
RANGE = {"month_from": "2026-01", "month_to": "2026-03"}


async def _sell(
    session: AsyncSession, impact: ImpactService, household: Household, amount: int
) -> None:
    product = await create_product(session, household=household)
    await impact.record_event(settled(household_line(household, product, amount), settled_at=MARCH))
    await impact._uow.session.flush()


async def _official(session: AsyncSession, level: JurisdictionLevel, code: str) -> dict[str, str]:
    user = await create_user(
        session, role=Role.OFFICIAL, jurisdiction_level=level, jurisdiction_code=code
    )
    return await auth_headers(session, user)


async def test_a_commune_official_lists_the_households_of_the_commune_with_names(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    household = await create_household(session, head_name="Nguyễn Thị Mận", members_count=4)
    await _sell(session, impact, household, 500_000)
    headers = await _official(session, JurisdictionLevel.COMMUNE, HUONG_TRA)

    response = await client.get("/api/impact/households", params=RANGE, headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    [item] = [i for i in body["items"] if i["household_id"] == str(household.id)]
    assert item["household_name"] == "Nguyễn Thị Mận"
    assert (item["month"], item["status"], item["revenue_amount"]) == ("2026-03", "poor", 500_000)
    assert (item["income_amount"], item["uplift_per_person"]) == (200_000, 50_000)
    assert item["poverty_line"] == 2_000_000  # Hương Trà is a phường: urban line
    assert "phone" not in response.text
    assert household.phone not in response.text


async def test_an_admin_sees_every_household_but_no_names(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    household = await create_household(session, head_name="Trần Văn Quýt")
    await _sell(session, impact, household, 120_000)
    admin = await create_user(session, role=Role.ADMIN)

    response = await client.get(
        "/api/impact/households", params=RANGE, headers=await auth_headers(session, admin)
    )

    assert response.status_code == 200
    [item] = [i for i in response.json()["items"] if i["household_id"] == str(household.id)]
    assert item["household_name"] is None
    assert "Trần Văn Quýt" not in response.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param(
            "/api/impact/households", {"commune_code": HUONG_THUY}, id="list-other-commune"
        ),
        pytest.param("/api/impact/households", {"province_code": "92"}, id="list-other-province"),
        pytest.param(f"/api/impact/communes/{HUONG_THUY}/summary", {}, id="other-commune-summary"),
        pytest.param(f"/api/impact/provinces/{HUE}/summary", {}, id="own-province-summary"),
        pytest.param("/api/impact/provinces/92/summary", {}, id="other-province-summary"),
    ],
)
async def test_a_commune_official_is_refused_outside_the_commune(
    session: AsyncSession, client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    headers = await _official(session, JurisdictionLevel.COMMUNE, HUONG_TRA)

    response = await client.get(path, params=params, headers=headers)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


async def test_a_province_official_reads_any_commune_of_the_province_but_not_another(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    household = await create_household(session, commune_code=HUONG_THUY)
    await _sell(session, impact, household, 80_000)
    headers = await _official(session, JurisdictionLevel.PROVINCE, HUE)

    inside = await client.get(
        f"/api/impact/communes/{HUONG_THUY}/summary", params=RANGE, headers=headers
    )
    outside = await client.get(
        f"/api/impact/communes/{PHONG_DIEN}/summary", params=RANGE, headers=headers
    )

    assert inside.status_code == 200
    assert [m["revenue_amount"] for m in inside.json()["months"]] == [0, 0, 80_000]
    assert outside.status_code == 403


async def test_a_province_summary_has_each_month_and_its_communes(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    poor = await create_household(session, status=PovertyStatus.POOR, members_count=2)
    near = await create_household(
        session, status=PovertyStatus.NEAR_POOR, commune_code=HUONG_THUY, members_count=1
    )
    await _sell(session, impact, poor, 300_000)
    await _sell(session, impact, near, 100_000)
    headers = await _official(session, JurisdictionLevel.PROVINCE, HUE)

    response = await client.get(
        f"/api/impact/provinces/{HUE}/summary", params=RANGE, headers=headers
    )

    assert response.status_code == 200
    body = response.json()
    march = body["months"][-1]
    assert [m["month"] for m in body["months"]] == ["2026-01", "2026-02", "2026-03"]
    assert (march["households_selling"], march["revenue_amount"]) == (2, 400_000)
    assert march["groups"]["poor"] == {"households": 1, "revenue_amount": 300_000}
    assert march["groups"]["near_poor"] == {"households": 1, "revenue_amount": 100_000}
    assert march["income_uplift_amount"] == 160_000
    # Uplift per person: 120,000 / 2 = 60,000 and 40,000 / 1 = 40,000; lower median 40,000.
    assert march["median_uplift_per_person"] == 40_000
    communes = {c["commune_code"]: c for c in body["communes"]}
    assert communes[HUONG_TRA]["revenue_poor"] == 300_000
    assert communes[HUONG_THUY]["revenue_near_poor"] == 100_000


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"month_from": "2026-05", "month_to": "2026-03"}, "month_from", id="reversed"),
        pytest.param({"month_from": "2023-01", "month_to": "2026-01"}, "month_to", id="37-months"),
        pytest.param({"month_from": "2026-13"}, "month_from", id="no-such-month"),
    ],
)
async def test_a_bad_month_range_is_refused_naming_the_field(
    session: AsyncSession, client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    headers = await _official(session, JurisdictionLevel.COMMUNE, HUONG_TRA)

    response = await client.get("/api/impact/households", params=params, headers=headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_36_months_is_the_longest_range_allowed(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = await _official(session, JurisdictionLevel.COMMUNE, HUONG_TRA)

    response = await client.get(
        "/api/impact/households",
        params={"month_from": "2023-04", "month_to": "2026-03"},
        headers=headers,
    )

    assert response.status_code == 200


async def test_an_unknown_commune_is_422_as_a_filter_and_404_as_a_path(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    admin = await create_user(session, role=Role.ADMIN)
    headers = await auth_headers(session, admin)

    as_filter = await client.get(
        "/api/impact/households", params={"commune_code": "99999"}, headers=headers
    )
    as_path = await client.get("/api/impact/communes/99999/summary", headers=headers)

    assert as_filter.status_code == 422
    assert as_filter.json()["errors"][0]["field"] == "commune_code"
    assert as_path.status_code == 404


async def test_farmers_and_buyers_cannot_read_reports(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    for role in (Role.FARMER, Role.BUYER, Role.HELPER):
        user = await create_user(session, role=role)
        response = await client.get(
            "/api/impact/households", headers=await auth_headers(session, user)
        )
        assert response.status_code == 403


async def test_the_public_page_hides_groups_of_fewer_than_five_households(
    session: AsyncSession, impact: ImpactService, client: httpx.AsyncClient
) -> None:
    for _ in range(5):
        await _sell(
            session, impact, await create_household(session, status=PovertyStatus.POOR), 100_000
        )
    for _ in range(2):
        near = await create_household(session, status=PovertyStatus.NEAR_POOR)
        await _sell(session, impact, near, 70_000)

    response = await client.get(f"/api/public/impact/provinces/{HUE}", params=RANGE)
    page = await client.get(f"/impact/public/provinces/{HUE}", params=RANGE)

    assert response.status_code == 200
    march = response.json()["months"][-1]
    assert march["households_selling"] == 7
    assert march["poor"] == {"households": 5, "revenue_amount": 500_000}
    assert march["near_poor"] == {"households": "< 5", "revenue_amount": None}
    assert response.json()["months"][0]["poor"]["households"] == "< 5"
    assert page.status_code == 200
    assert "140000" not in page.text
    assert "&lt; 5" in page.text


async def test_an_admin_sets_an_income_share_and_the_aggregates_are_rebuilt_after(
    session: AsyncSession, client: httpx.AsyncClient, job_sender: object
) -> None:
    admin = await create_user(session, role=Role.ADMIN)
    headers = await auth_headers(session, admin)

    response = await client.put(
        "/api/impact/income-shares/fruit", json={"share_percent": 37.5}, headers=headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["share_bps"] == 3750
    assert response.json()["share_percent"] == "37.5"
    assert "impact.rebuild_aggregates" in job_sender.names()  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", [-1, 100.01, 120, "abc", 12.345])
async def test_an_income_share_outside_0_to_100_percent_is_refused_and_nothing_written(
    session: AsyncSession, client: httpx.AsyncClient, value: object
) -> None:
    admin = await create_user(session, role=Role.ADMIN)

    response = await client.put(
        "/api/impact/income-shares/vegetable",
        json={"share_percent": value},
        headers=await auth_headers(session, admin),
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "share_percent"
    row = await session.scalar(select(IncomeShare).where(IncomeShare.category == "vegetable"))
    assert row is None


async def test_an_official_cannot_change_income_shares(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = await _official(session, JurisdictionLevel.PROVINCE, HUE)

    response = await client.put(
        "/api/impact/income-shares/fruit", json={"share_percent": 50}, headers=headers
    )

    assert response.status_code == 403
