"""Cooperatives, their managers and their member households over time."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.db import utcnow
from marketplace.errors import PermissionDenied
from marketplace.sellers.models import CooperativeMember
from marketplace.sellers.policy import vietnam_today
from marketplace.sellers.service import SellersService
from tests.accounts.factories import create_user
from tests.sellers.factories import (
    CAN_THO,
    HUE,
    HUONG_TRA,
    PHONG_DIEN,
    MakeCaller,
    add_member,
    create_cooperative,
    create_household,
    identity,
)


def coop_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "HTX Nông nghiệp Hương Trà",
        "commune_code": HUONG_TRA,
        "registration_number": "3301234567",
        "description": "Cam, bưởi da xanh, thanh trà của các hộ thành viên.",
    }
    body.update(overrides)
    return body


async def member_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(CooperativeMember)) or 0)


@pytest.mark.parametrize(
    ("role", "jurisdiction", "status"),
    [
        pytest.param(Role.ADMIN, None, 201, id="admin"),
        pytest.param(Role.OFFICIAL, HUONG_TRA, 201, id="commune-official"),
        pytest.param(Role.OFFICIAL, PHONG_DIEN, 403, id="other-commune-official"),
        pytest.param(Role.COOPERATIVE_MANAGER, None, 403, id="manager"),
        pytest.param(Role.FARMER, None, 403, id="farmer"),
    ],
)
async def test_admins_and_officials_of_the_commune_register_cooperatives(
    client: httpx.AsyncClient,
    caller: MakeCaller,
    role: Role,
    jurisdiction: str | None,
    status: int,
) -> None:
    who = await caller(role, commune=jurisdiction)

    response = await client.post("/api/cooperatives", json=coop_body(), headers=who.headers)

    assert response.status_code == status, response.text
    if status == 201:
        body = response.json()
        assert (body["commune_code"], body["province_code"]) == (HUONG_TRA, HUE)
        public = await client.get(f"/api/cooperatives/{body['id']}")
        assert public.status_code == 200
        assert public.json()["name"] == "HTX Nông nghiệp Hương Trà"


async def test_a_cooperative_in_an_unknown_commune_is_refused_on_the_field(
    client: httpx.AsyncClient, caller: MakeCaller
) -> None:
    admin = await caller(Role.ADMIN)

    response = await client.post(
        "/api/cooperatives", json=coop_body(commune_code="00000"), headers=admin.headers
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "commune_code"


async def test_anyone_lists_cooperatives_by_province(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    hue = await create_cooperative(session, name="HTX Nông nghiệp Hương Trà")
    await create_cooperative(session, name="HTX Cây ăn trái Phong Điền", commune_code=PHONG_DIEN)

    response = await client.get("/api/cooperatives", params={"province_code": HUE})

    assert [c["id"] for c in response.json()] == [str(hue.id)]


async def test_an_admin_adds_only_cooperative_manager_accounts_as_managers(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    admin = await caller(Role.ADMIN)
    manager = await create_user(session, role=Role.COOPERATIVE_MANAGER)
    farmer = await create_user(session, role=Role.FARMER)
    coop = await create_cooperative(session)
    url = f"/api/cooperatives/{coop.id}/managers"

    added = await client.post(url, json={"user_id": str(manager.id)}, headers=admin.headers)
    twice = await client.post(url, json={"user_id": str(manager.id)}, headers=admin.headers)
    wrong = await client.post(url, json={"user_id": str(farmer.id)}, headers=admin.headers)
    listed = await client.get(url, headers=admin.headers)
    removed = await client.delete(f"{url}/{manager.id}", headers=admin.headers)
    after = await client.get(url, headers=admin.headers)

    assert (added.status_code, twice.status_code) == (201, 201)
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "user_id"
    assert [m["user_id"] for m in listed.json()] == [str(manager.id)]
    assert removed.status_code == 204
    assert after.json() == []


async def test_a_manager_lists_the_cooperatives_they_manage(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    manager = await caller(Role.COOPERATIVE_MANAGER)
    mine = await create_cooperative(session, managers=[manager.user])
    await create_cooperative(session)

    response = await client.get("/api/cooperatives/mine", headers=manager.headers)

    assert [c["id"] for c in response.json()] == [str(mine.id)]


async def test_a_manager_adds_and_removes_members_with_dates(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    manager = await caller(Role.COOPERATIVE_MANAGER)
    coop = await create_cooperative(session, managers=[manager.user])
    household = await create_household(session, phone="0905123401")
    url = f"/api/cooperatives/{coop.id}/members"

    added = await client.post(
        url,
        json={"household_id": str(household.id), "joined_on": "2023-03-01"},
        headers=manager.headers,
    )
    member_id = added.json()["id"]
    left = await client.post(
        f"{url}/{member_id}/leave", json={"left_on": "2025-06-30"}, headers=manager.headers
    )
    leave_again = await client.post(
        f"{url}/{member_id}/leave", json={"left_on": "2025-07-30"}, headers=manager.headers
    )

    assert added.status_code == 201, added.text
    assert added.json()["phone"] == "0905123401"
    assert left.status_code == 200
    assert left.json()["left_on"] == "2025-06-30"
    assert left.json()["phone_masked"] is True  # no longer a member today: no full phone
    assert leave_again.status_code == 409
    assert leave_again.json()["code"] == "membership_ended"


@pytest.mark.parametrize(
    ("joined_on", "left_on", "status", "field"),
    [
        pytest.param("2024-03-01", "2024-02-29", 422, "left_on", id="left-before-joined"),
        pytest.param("2024-03-01", "2024-03-01", 201, None, id="left-the-day-it-joined"),
    ],
)
async def test_a_membership_cannot_end_before_it_starts(
    *,
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    joined_on: str,
    left_on: str,
    status: int,
    field: str | None,
) -> None:
    admin = await caller(Role.ADMIN)
    coop = await create_cooperative(session)
    household = await create_household(session)

    response = await client.post(
        f"/api/cooperatives/{coop.id}/members",
        json={"household_id": str(household.id), "joined_on": joined_on, "left_on": left_on},
        headers=admin.headers,
    )

    assert response.status_code == status
    if field:
        assert response.json()["errors"][0]["field"] == field
        assert await member_count(session) == 0


async def test_leaving_before_joining_is_refused_when_ending_a_membership(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    admin = await caller(Role.ADMIN)
    coop = await create_cooperative(session)
    member = await add_member(
        session, coop, await create_household(session), joined_on=date(2024, 3, 1)
    )

    response = await client.post(
        f"/api/cooperatives/{coop.id}/members/{member.id}/leave",
        json={"left_on": "2024-01-01"},
        headers=admin.headers,
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "left_on"
    await session.refresh(member)
    assert member.left_on is None


@pytest.mark.parametrize(
    ("joined_on", "left_on", "status"),
    [
        pytest.param("2022-01-01", None, 409, id="open-overlaps-open"),
        pytest.param("2022-01-01", "2023-03-02", 409, id="ends-a-day-into-it"),
        pytest.param("2022-01-01", "2023-03-01", 201, id="ends-the-day-it-starts"),
        pytest.param("2024-06-01", None, 409, id="starts-inside"),
    ],
)
async def test_memberships_of_one_household_never_overlap(
    *,
    client: httpx.AsyncClient,
    caller: MakeCaller,
    session: AsyncSession,
    joined_on: str,
    left_on: str | None,
    status: int,
) -> None:
    admin = await caller(Role.ADMIN)
    household = await create_household(session)
    coop = await create_cooperative(session, members=[household], joined_on=date(2023, 3, 1))

    response = await client.post(
        f"/api/cooperatives/{coop.id}/members",
        json={"household_id": str(household.id), "joined_on": joined_on, "left_on": left_on},
        headers=admin.headers,
    )

    assert response.status_code == status, response.text
    if status == 409:
        assert response.json()["code"] == "already_member"


async def test_adding_an_unknown_household_is_a_422_on_the_field(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    admin = await caller(Role.ADMIN)
    coop = await create_cooperative(session)

    response = await client.post(
        f"/api/cooperatives/{coop.id}/members",
        json={"household_id": str(uuid.uuid4()), "joined_on": "2024-01-01"},
        headers=admin.headers,
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "household_id"


async def test_a_manager_of_another_cooperative_cannot_add_or_list_members(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    manager = await caller(Role.COOPERATIVE_MANAGER)
    await create_cooperative(session, managers=[manager.user])
    other = await create_cooperative(session)
    household = await create_household(session)
    url = f"/api/cooperatives/{other.id}/members"

    added = await client.post(
        url,
        json={"household_id": str(household.id), "joined_on": "2024-01-01"},
        headers=manager.headers,
    )
    listed = await client.get(url, headers=manager.headers)

    assert added.status_code == 403
    assert listed.status_code == 403
    assert await member_count(session) == 0


async def test_members_on_a_day_and_phones_by_reader(
    client: httpx.AsyncClient, caller: MakeCaller, session: AsyncSession
) -> None:
    manager = await caller(Role.COOPERATIVE_MANAGER)
    admin = await caller(Role.ADMIN)
    official = await caller(Role.OFFICIAL, province=HUE)
    far_official = await caller(Role.OFFICIAL, province=CAN_THO)
    current = await create_household(session, phone="0905123401")
    former = await create_household(session, phone="0905123402")
    coop = await create_cooperative(session, managers=[manager.user])
    await add_member(session, coop, current, joined_on=date(2023, 3, 1))
    await add_member(session, coop, former, joined_on=date(2023, 3, 1), left_on=date(2024, 7, 1))
    url = f"/api/cooperatives/{coop.id}/members"

    in_2024 = await client.get(url, params={"on": "2024-06-30"}, headers=manager.headers)
    in_2025 = await client.get(url, params={"on": "2024-07-01"}, headers=manager.headers)
    everyone = await client.get(url, headers=manager.headers)
    by_admin = await client.get(url, headers=admin.headers)
    by_official = await client.get(url, headers=official.headers)
    by_far_official = await client.get(url, headers=far_official.headers)

    assert [m["household_id"] for m in in_2024.json()] == [str(current.id), str(former.id)]
    assert [m["household_id"] for m in in_2025.json()] == [str(current.id)]
    assert {m["household_id"]: m["phone"] for m in everyone.json()} == {
        str(current.id): "0905123401",
        str(former.id): "0905***402",
    }
    assert {m["phone"] for m in by_admin.json()} == {"0905***401", "0905***402"}
    assert {m["phone"] for m in by_official.json()} == {"0905123401", "0905123402"}
    assert by_far_official.status_code == 403


async def test_active_members_counts_the_day_of_joining_but_not_the_day_of_leaving(
    sellers: SellersService, session: AsyncSession
) -> None:
    stays = await create_household(session)
    leaves = await create_household(session)
    rejoins = await create_household(session)
    coop = await create_cooperative(session)
    await add_member(session, coop, stays, joined_on=date(2024, 1, 1))
    await add_member(session, coop, leaves, joined_on=date(2024, 1, 1), left_on=date(2024, 9, 1))
    await add_member(session, coop, rejoins, joined_on=date(2023, 1, 1), left_on=date(2024, 1, 1))
    await add_member(session, coop, rejoins, joined_on=date(2025, 1, 1))

    def ids(*households: Any) -> list[uuid.UUID]:
        return sorted(h.id for h in households)

    assert await sellers.active_members(coop.id, date(2023, 12, 31)) == ids(rejoins)
    assert await sellers.active_members(coop.id, date(2024, 1, 1)) == ids(stays, leaves)
    assert await sellers.active_members(coop.id, date(2024, 8, 31)) == ids(stays, leaves)
    assert await sellers.active_members(coop.id, date(2024, 9, 1)) == ids(stays)
    assert await sellers.active_members(coop.id, date(2025, 1, 1)) == ids(stays, rejoins)


async def test_manager_checks_follow_membership_today(
    sellers: SellersService, session: AsyncSession
) -> None:
    manager = await create_user(session, role=Role.COOPERATIVE_MANAGER)
    other_manager = await create_user(session, role=Role.COOPERATIVE_MANAGER)
    admin = await create_user(session, role=Role.ADMIN)
    member = await create_household(session)
    left_today = await create_household(session)
    joins_tomorrow = await create_household(session)
    coop = await create_cooperative(session, managers=[manager], members=[member])
    today = vietnam_today(utcnow())
    await add_member(session, coop, left_today, joined_on=date(2023, 1, 1), left_on=today)
    await add_member(session, coop, joins_tomorrow, joined_on=today + timedelta(days=1))

    assert await sellers.is_manager(manager.id, coop.id) is True
    assert await sellers.is_manager(other_manager.id, coop.id) is False
    assert await sellers.manages_household(manager.id, member.id) is True
    assert await sellers.manages_household(manager.id, left_today.id) is False
    assert await sellers.manages_household(manager.id, joins_tomorrow.id) is False
    assert await sellers.manages_household(other_manager.id, member.id) is False
    assert await sellers.can_manage_cooperative(identity(manager), coop.id) is True
    assert await sellers.can_manage_cooperative(identity(admin), coop.id) is True
    assert await sellers.can_manage_cooperative(identity(other_manager), coop.id) is False
    ref = await sellers.require_cooperative_manager(identity(manager), coop.id)
    assert ref.name == coop.name
    with pytest.raises(PermissionDenied):
        await sellers.require_cooperative_manager(identity(other_manager), coop.id)
