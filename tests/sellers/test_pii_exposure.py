"""Every sellers read, as every kind of reader: the national ID appears only in the detail
view of the household's own officials, the full phone only to the household, its helper,
its cooperative's manager and its officials, and neither ever in a log line."""

from __future__ import annotations

import logging

import httpx
import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from tests.sellers.factories import (
    CAN_THO,
    HUE,
    HUONG_THUY,
    HUONG_TRA,
    Caller,
    MakeCaller,
    create_cooperative,
    create_household,
    grant_consent,
)

NATIONAL_ID = "046199123456"
PHONE = "0977123456"
PHONE_DIGITS = "977123456"  # the number as "+84 977 123 456" would show it

FULL_PHONE_READS = {
    ("own_farmer", "detail"),
    ("own_farmer", "mine"),
    ("helper", "detail"),
    ("helper", "mine"),
    ("coop_manager", "detail"),
    ("coop_manager", "members"),
    ("commune_official", "detail"),
    ("commune_official", "list"),
    ("commune_official", "members"),
    ("province_official", "detail"),
    ("province_official", "list"),
    ("province_official", "members"),
}
NATIONAL_ID_READS = {("commune_official", "detail"), ("province_official", "detail")}


async def test_pii_appears_only_where_the_rules_allow_and_never_in_logs(
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    readers: dict[str, Caller] = {
        "admin": await caller(Role.ADMIN),
        "commune_official": await caller(Role.OFFICIAL, commune=HUONG_TRA),
        "province_official": await caller(Role.OFFICIAL, province=HUE),
        "other_commune_official": await caller(Role.OFFICIAL, commune=HUONG_THUY),
        "other_province_official": await caller(Role.OFFICIAL, province=CAN_THO),
        "own_farmer": await caller(Role.FARMER),
        "other_farmer": await caller(Role.FARMER),
        "helper": await caller(Role.HELPER),
        "other_helper": await caller(Role.HELPER),
        "coop_manager": await caller(Role.COOPERATIVE_MANAGER),
        "other_manager": await caller(Role.COOPERATIVE_MANAGER),
        "buyer": await caller(Role.BUYER),
        "host": await caller(Role.HOST),
    }
    household = await create_household(
        session, phone=PHONE, national_id=NATIONAL_ID, farmer=readers["own_farmer"].user
    )
    await grant_consent(session, household, readers["helper"].user)
    coop = await create_cooperative(
        session, managers=[readers["coop_manager"].user], members=[household]
    )
    await create_cooperative(session, managers=[readers["other_manager"].user])
    reads = {
        "detail": f"/api/households/{household.id}",
        "list": "/api/households",
        "mine": "/api/households/mine",
        "status": f"/api/households/{household.id}/status",
        "history": f"/api/households/{household.id}/status-history",
        "consents": f"/api/households/{household.id}/consents",
        "helper_actions": f"/api/households/{household.id}/helper-actions",
        "members": f"/api/cooperatives/{coop.id}/members",
        "cooperatives": "/api/cooperatives",
        "my_cooperatives": "/api/cooperatives/mine",
        "cooperative": f"/api/cooperatives/{coop.id}",
    }
    caplog.set_level(logging.DEBUG)

    full_phone: set[tuple[str, str]] = set()
    national_id: set[tuple[str, str]] = set()
    answered_200 = 0
    with structlog.testing.capture_logs() as events:
        for reader, who in readers.items():
            for name, path in reads.items():
                response = await client.get(path, headers=who.headers)
                answered_200 += response.status_code == 200
                assert response.status_code < 500, (reader, name, response.text)
                if PHONE_DIGITS in response.text:
                    full_phone.add((reader, name))
                if NATIONAL_ID in response.text:
                    national_id.add((reader, name))

    assert answered_200 > 40  # the scan read real bodies, not only refusals
    assert national_id == NATIONAL_ID_READS
    assert full_phone == FULL_PHONE_READS
    logged = repr(events) + caplog.text
    assert NATIONAL_ID not in logged
    assert PHONE_DIGITS not in logged
