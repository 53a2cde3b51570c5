"""Logging in: one answer for every refusal, a usable token for a right password."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.credentials import token_digest
from marketplace.accounts.models import ApiToken, Role, User
from marketplace.settings import Settings
from tests.accounts.factories import DEFAULT_PASSWORD, ClientAt, create_user, unique_login


async def test_a_right_password_returns_a_bearer_token_that_opens_me(
    session: AsyncSession, login_client: httpx.AsyncClient, settings: Settings
) -> None:
    user = await create_user(session, role=Role.FARMER, display_name="Nguyễn Văn An")

    response = await login_client.post(
        "/api/auth/login", json={"login": user.login, "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["id"] == str(user.id)
    assert body["user"]["role"] == "farmer"
    assert body["user"]["display_name"] == "Nguyễn Văn An"
    me = await login_client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == str(user.id)


async def test_the_token_is_stored_only_as_its_digest_with_expiry_and_address(
    session: AsyncSession, client_at: ClientAt, settings: Settings
) -> None:
    user = await create_user(session)
    ip = "10.99.1.7"
    async with client_at(ip) as c:
        response = await c.post(
            "/api/auth/login", json={"login": user.login, "password": DEFAULT_PASSWORD}
        )
    token = response.json()["token"]
    rows = (
        (
            await session.execute(
                select(ApiToken)
                .where(ApiToken.user_id == user.id)
                .execution_options(populate_existing=True)
            )
        )
        .scalars()
        .all()
    )

    assert len(rows) == 1
    assert rows[0].token_hash == token_digest(token)
    assert token not in rows[0].token_hash
    assert rows[0].created_ip == ip
    lifetime = rows[0].expires_at - rows[0].created_at
    ttl = timedelta(seconds=settings.security.token_ttl_seconds)
    assert ttl - timedelta(minutes=1) < lifetime <= ttl + timedelta(minutes=1)


async def test_login_ignores_case_and_surrounding_spaces(
    session: AsyncSession, login_client: httpx.AsyncClient
) -> None:
    user = await create_user(session, login=unique_login())

    response = await login_client.post(
        "/api/auth/login",
        json={"login": f"  {user.login.upper()} ", "password": DEFAULT_PASSWORD},
    )

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "case",
    ["wrong password", "unknown login", "deactivated account"],
)
async def test_every_refused_login_gets_the_same_invalid_credentials_answer(
    session: AsyncSession, login_client: httpx.AsyncClient, case: str
) -> None:
    user = await create_user(session, is_active=case != "deactivated account")
    login = unique_login() if case == "unknown login" else user.login
    password = "not-the-password" if case == "wrong password" else DEFAULT_PASSWORD

    response = await login_client.post(
        "/api/auth/login", json={"login": login, "password": password}
    )

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "invalid_credentials"
    assert body["detail"] == "Login or password is wrong"
    assert "token" not in body


async def test_a_hash_made_with_old_costs_is_upgraded_at_login(
    session: AsyncSession, login_client: httpx.AsyncClient, settings: Settings
) -> None:
    old = PasswordHasher(time_cost=2, memory_cost=2048)
    user = await create_user(session)
    user.password_hash = old.hash(DEFAULT_PASSWORD)
    await session.flush()

    response = await login_client.post(
        "/api/auth/login", json={"login": user.login, "password": DEFAULT_PASSWORD}
    )

    assert response.status_code == 200
    stored = await session.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored is not None
    assert f"m={settings.security.argon2_memory_cost},t={settings.security.argon2_time_cost}," in (
        stored
    )
    assert PasswordHasher().verify(stored, DEFAULT_PASSWORD)


async def test_a_login_body_with_missing_fields_is_a_validation_problem(
    login_client: httpx.AsyncClient,
) -> None:
    response = await login_client.post("/api/auth/login", json={"login": "an@example.vn"})

    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
