"""No national ID or phone number in any impact response, page or log line, whoever asks;
household names only for officials whose jurisdiction holds the household."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.impact.service import ImpactService
from tests.accounts.factories import auth_headers, create_user
from tests.impact.factories import create_product, household_line, settled
from tests.sellers.factories import HUE, HUONG_THUY, HUONG_TRA, create_household

NATIONAL_ID = "046088777666"
PHONE = "0912345678"
NAME = "Hồ Thị Bưởi Xanh"
RANGE = {"month_from": "2026-01", "month_to": "2026-03"}


@pytest.fixture
async def seeded(session: AsyncSession, impact: ImpactService) -> None:
    household = await create_household(
        session, head_name=NAME, national_id=NATIONAL_ID, phone=PHONE, commune_code=HUONG_TRA
    )
    product = await create_product(session, household=household)
    await impact.record_event(
        settled(
            household_line(household, product, 640_000),
            settled_at=datetime(2026, 3, 3, 2, tzinfo=UTC),
        )
    )
    await impact._uow.session.flush()


ENDPOINTS = (
    ("/api/impact/households", RANGE),
    (f"/api/impact/communes/{HUONG_TRA}/summary", RANGE),
    (f"/api/impact/provinces/{HUE}/summary", RANGE),
    ("/api/impact/income-shares", {}),
    (f"/api/public/impact/provinces/{HUE}", RANGE),
    (f"/impact/public/provinces/{HUE}", RANGE),
)


@pytest.mark.parametrize(
    ("caller", "sees_name"),
    [
        pytest.param((Role.OFFICIAL, JurisdictionLevel.COMMUNE, HUONG_TRA), True, id="commune"),
        pytest.param((Role.OFFICIAL, JurisdictionLevel.COMMUNE, HUONG_THUY), False, id="neighbour"),
        pytest.param((Role.OFFICIAL, JurisdictionLevel.PROVINCE, HUE), True, id="province"),
        pytest.param((Role.ADMIN, None, None), False, id="admin"),
        pytest.param((Role.FARMER, None, None), False, id="farmer"),
        pytest.param((Role.BUYER, None, None), False, id="buyer"),
    ],
)
@pytest.mark.usefixtures("seeded")
async def test_no_role_ever_reads_a_national_id_or_phone_and_names_stay_in_jurisdiction(
    session: AsyncSession,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    caller: tuple[Role, JurisdictionLevel | None, str | None],
    sees_name: bool,
) -> None:
    role, level, code = caller
    user = await create_user(session, role=role, jurisdiction_level=level, jurisdiction_code=code)
    headers = await auth_headers(session, user)
    bodies = []
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        for path, params in ENDPOINTS:
            for with_token in (True, False):
                response = await client.get(
                    path, params=params, headers=headers if with_token else {}
                )
                assert response.status_code < 500
                bodies.append(response.text)
    everything = "\n".join(bodies) + repr(logs) + caplog.text

    assert NATIONAL_ID not in everything
    assert PHONE not in everything
    assert PHONE[-9:] not in everything
    assert (NAME in everything) is sees_name
