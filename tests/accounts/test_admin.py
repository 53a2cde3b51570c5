"""Account administration: admins only; officials get a jurisdiction the geo tables know."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import ApiToken, Role, User
from tests.accounts.factories import PHUONG_NINH_KIEU, auth_headers, create_user, unique_login

NON_ADMIN_ROLES = [role for role in Role if role is not Role.ADMIN]

Call = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


def new_farmer() -> dict[str, str]:
    return {
        "login": unique_login(),
        "password": "vuon-oi-huong-xuan",
        "display_name": "Bùi Quốc Khánh",
        "role": "farmer",
    }


ADMIN_CALLS: dict[str, Call] = {
    "create": lambda c, h: c.post("/api/admin/users", json=new_farmer(), headers=h),
    "list": lambda c, h: c.get("/api/admin/users", headers=h),
    "deactivate": lambda c, h: c.post(f"/api/admin/users/{uuid.uuid4()}/deactivate", headers=h),
}


@pytest.fixture
async def admin_headers(session: AsyncSession) -> dict[str, str]:
    admin = await create_user(session, role=Role.ADMIN, display_name="Quản trị viên")
    return await auth_headers(session, admin)


@pytest.mark.parametrize("call", ADMIN_CALLS.values(), ids=ADMIN_CALLS.keys())
@pytest.mark.parametrize("role", NON_ADMIN_ROLES, ids=[r.value for r in NON_ADMIN_ROLES])
async def test_every_other_role_is_refused_the_admin_endpoints(
    session: AsyncSession, client: httpx.AsyncClient, role: Role, call: Call
) -> None:
    user = await create_user(session, role=role)

    response = await call(client, await auth_headers(session, user))

    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"


@pytest.mark.parametrize("call", ADMIN_CALLS.values(), ids=ADMIN_CALLS.keys())
async def test_anonymous_callers_are_refused_the_admin_endpoints(
    client: httpx.AsyncClient, call: Call
) -> None:
    response = await call(client, {})

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    ("call", "status"),
    [(ADMIN_CALLS["create"], 201), (ADMIN_CALLS["list"], 200), (ADMIN_CALLS["deactivate"], 404)],
    ids=["create", "list", "deactivate-unknown"],
)
async def test_an_admin_may_call_the_admin_endpoints(
    client: httpx.AsyncClient, admin_headers: dict[str, str], call: Call, status: int
) -> None:
    response = await call(client, admin_headers)

    assert response.status_code == status, response.text


async def test_an_admin_creates_a_commune_official_with_the_geo_code(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/admin/users",
        headers=admin_headers,
        json={
            "login": unique_login(),
            "password": "can-bo-phuong-ninh-kieu",
            "display_name": "Huỳnh Thị Phương",
            "role": "official",
            "jurisdiction_level": "commune",
            "jurisdiction_code": PHUONG_NINH_KIEU,
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["role"] == "official"
    assert body["jurisdiction_level"] == "commune"
    assert body["jurisdiction_code"] == PHUONG_NINH_KIEU
    assert body["admin_version"] == "2025-07"


async def test_an_admin_creates_a_province_official(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/admin/users",
        headers=admin_headers,
        json={
            "login": unique_login(),
            "password": "can-bo-tinh-can-tho",
            "display_name": "Đặng Thị Hạnh",
            "role": "official",
            "jurisdiction_level": "province",
            "jurisdiction_code": "92",
        },
    )

    assert response.status_code == 201, response.text
    assert response.json()["jurisdiction_code"] == "92"


@pytest.mark.parametrize(
    "case",
    [
        ("official", None, None, "jurisdiction_level"),
        ("official", "commune", None, "jurisdiction_code"),
        ("official", "commune", "99999", "jurisdiction_code"),
        ("official", "province", "99", "jurisdiction_code"),
        ("farmer", "commune", PHUONG_NINH_KIEU, "jurisdiction_level"),
    ],
    ids=[
        "official-without-jurisdiction",
        "official-without-code",
        "unknown-commune",
        "unknown-province",
        "farmer-with-jurisdiction",
    ],
)
async def test_a_jurisdiction_is_required_of_officials_and_refused_to_others(
    session: AsyncSession,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    case: tuple[str, str | None, str | None, str],
) -> None:
    role, level, code, field = case
    login = unique_login()
    body = {
        "login": login,
        "password": "mat-khau-can-bo",
        "display_name": "Võ Minh Giang",
        "role": role,
        "jurisdiction_level": level,
        "jurisdiction_code": code,
    }

    response = await client.post("/api/admin/users", headers=admin_headers, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert await session.scalar(select(User.id).where(User.login == login)) is None


async def test_the_user_list_pages_and_filters_by_role(
    session: AsyncSession, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    hosts = [await create_user(session, role=Role.HOST) for _ in range(3)]

    first = await client.get(
        "/api/admin/users", params={"role": "host", "limit": 2}, headers=admin_headers
    )
    second = await client.get(
        "/api/admin/users", params={"role": "host", "limit": 2, "offset": 2}, headers=admin_headers
    )

    assert first.status_code == 200, first.text
    assert first.json()["total"] == 3
    ids = [u["id"] for u in first.json()["items"] + second.json()["items"]]
    assert ids == [str(h.id) for h in hosts]
    assert all(u["role"] == "host" for u in first.json()["items"])


async def test_deactivating_an_account_revokes_its_tokens_and_its_logins(
    session: AsyncSession,
    client: httpx.AsyncClient,
    login_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
) -> None:
    farmer = await create_user(session, role=Role.FARMER)
    farmer_headers = await auth_headers(session, farmer)

    response = await client.post(f"/api/admin/users/{farmer.id}/deactivate", headers=admin_headers)

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    me = await client.get("/api/auth/me", headers=farmer_headers)
    assert me.status_code == 401
    revoked = await session.scalars(
        select(ApiToken.revoked_at).where(ApiToken.user_id == farmer.id)
    )
    assert all(r is not None for r in revoked)
    login = await login_client.post(
        "/api/auth/login", json={"login": farmer.login, "password": "mat-khau-vuon-cam-2026"}
    )
    assert login.status_code == 401


async def test_an_admin_cannot_deactivate_themselves(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    admin = await create_user(session, role=Role.ADMIN)
    headers = await auth_headers(session, admin)

    response = await client.post(f"/api/admin/users/{admin.id}/deactivate", headers=headers)

    assert response.status_code == 409
    assert response.json()["code"] == "cannot_deactivate_self"
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
