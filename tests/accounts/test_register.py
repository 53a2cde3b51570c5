"""Self-service sign-up makes buyers, and only buyers."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role, User
from tests.accounts.factories import create_user, unique_login


async def count_users(session: AsyncSession, login: str) -> int:
    return int(await session.scalar(select(func.count()).where(User.login == login)) or 0)


async def test_registering_creates_a_buyer_who_can_log_in(
    session: AsyncSession, client: httpx.AsyncClient, login_client: httpx.AsyncClient
) -> None:
    login = unique_login()

    response = await client.post(
        "/api/auth/register",
        json={
            "login": login,
            "password": "cam-sanh-ham-yen",
            "display_name": "Phạm Thị Dung",
            "phone": "0912 345 678",
        },
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["role"] == "buyer"
    assert body["login"] == login
    assert body["phone"] == "0912345678"
    assert body["jurisdiction_level"] is None
    logged_in = await login_client.post(
        "/api/auth/login", json={"login": login, "password": "cam-sanh-ham-yen"}
    )
    assert logged_in.status_code == 200


async def test_a_phone_number_is_a_login_in_one_spelling(
    client: httpx.AsyncClient, login_client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/api/auth/register",
        json={
            "login": "+84 987 654 321",
            "password": "buoi-da-xanh-ben-tre",
            "display_name": "Lê Văn Cường",
        },
    )

    assert response.status_code == 201, response.text
    assert response.json()["login"] == "0987654321"
    logged_in = await login_client.post(
        "/api/auth/login", json={"login": "0987654321", "password": "buoi-da-xanh-ben-tre"}
    )
    assert logged_in.status_code == 200


@pytest.mark.parametrize("role", [r.value for r in Role if r is not Role.BUYER])
async def test_a_client_cannot_register_any_other_role(
    session: AsyncSession, client: httpx.AsyncClient, role: str
) -> None:
    login = unique_login()

    response = await client.post(
        "/api/auth/register",
        json={"login": login, "password": "0123456789", "display_name": "Kẻ Gian", "role": role},
    )

    assert response.status_code == 422
    assert await count_users(session, login) == 0


async def test_a_taken_login_is_a_conflict_whatever_its_case(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    existing = await create_user(session)

    response = await client.post(
        "/api/auth/register",
        json={
            "login": existing.login.upper(),
            "password": "mot-mat-khau-dai",
            "display_name": "Hoàng Văn Em",
        },
    )

    assert response.status_code == 409
    assert response.json()["code"] == "login_taken"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("password", "ngan-qua"),
        ("login", "khong-phai-email"),
        ("login", "09123"),
        ("display_name", "   "),
        ("phone", "12345"),
    ],
    ids=["short-password", "login-not-email", "login-short-phone", "blank-name", "bad-phone"],
)
async def test_bad_sign_up_fields_are_refused_naming_the_field(
    session: AsyncSession, client: httpx.AsyncClient, field: str, value: str
) -> None:
    body = {"login": unique_login(), "password": "mat-khau-du-dai", "display_name": "Đỗ Thị Lan"}
    body[field] = value

    response = await client.post("/api/auth/register", json=body)

    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert problem["errors"][0]["field"].endswith(field)
    assert await count_users(session, body["login"]) == 0
