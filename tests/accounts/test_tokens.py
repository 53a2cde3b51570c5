"""Bearer tokens: they open protected routes until they expire, are revoked or their account
is deactivated, and every bad token gets 401 `invalid_token` at once (nothing is cached)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.credentials import new_token, websocket_bearer_token
from marketplace.accounts.models import ApiToken, Role, User
from marketplace.db import utcnow
from tests.accounts.factories import auth_headers, create_user, issue_token


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def test_a_token_opens_me_for_its_own_account(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    user = await create_user(session, role=Role.HOST, display_name="Trần Thị Bích")

    response = await client.get("/api/auth/me", headers=await auth_headers(session, user))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(user.id)
    assert body["role"] == "host"
    assert body["display_name"] == "Trần Thị Bích"
    assert body["login"] == user.login


async def test_using_a_token_records_when_it_was_last_used(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    user = await create_user(session)
    issued = await issue_token(session, user)

    await client.get("/api/auth/me", headers={"Authorization": f"Bearer {issued.token}"})

    last_used = await session.scalar(
        select(ApiToken.last_used_at).where(ApiToken.id == issued.token_id)
    )
    assert last_used is not None
    assert utcnow() - last_used < timedelta(minutes=1)


async def test_after_logout_the_same_token_is_refused(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    user = await create_user(session)
    headers = await auth_headers(session, user)
    other = await auth_headers(session, user)

    logout = await client.post("/api/auth/logout", headers=headers)

    assert logout.status_code == 204
    assert logout.content == b""
    assert_problem(await client.get("/api/auth/me", headers=headers), 401, "invalid_token")
    # Only this token: the account's other session goes on.
    assert (await client.get("/api/auth/me", headers=other)).status_code == 200


async def test_logout_all_revokes_every_token_of_the_account_and_no_other(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    user = await create_user(session)
    stranger = await create_user(session)
    first, second = await auth_headers(session, user), await auth_headers(session, user)
    strangers = await auth_headers(session, stranger)

    response = await client.post("/api/auth/logout-all", headers=first)

    assert response.status_code == 204
    for headers in (first, second):
        assert_problem(await client.get("/api/auth/me", headers=headers), 401, "invalid_token")
    assert (await client.get("/api/auth/me", headers=strangers)).status_code == 200


async def test_an_expired_token_is_refused(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    user = await create_user(session)
    headers = await auth_headers(session, user, now=utcnow() - timedelta(days=8))

    assert_problem(await client.get("/api/auth/me", headers=headers), 401, "invalid_token")


async def test_a_token_about_to_expire_still_works(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    user = await create_user(session)
    headers = await auth_headers(
        session, user, now=utcnow() - timedelta(days=7) + timedelta(minutes=5)
    )

    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200


async def test_a_deactivated_accounts_token_is_refused_on_the_next_request(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    user = await create_user(session)
    headers = await auth_headers(session, user)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200

    await session.execute(User.__table__.update().where(User.id == user.id).values(is_active=False))

    assert_problem(await client.get("/api/auth/me", headers=headers), 401, "invalid_token")


async def test_a_well_formed_token_nobody_issued_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {new_token()}"})

    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Basic bmd1eWVuOnZhbmFu",
        "Token abcdef",
        "Bearer two words",
        "Bearer " + "x" * 500,
        "Bearer t\u1ed1i",
    ],
    ids=[
        "no-token",
        "blank-token",
        "basic-scheme",
        "unknown-scheme",
        "two-words",
        "oversized",
        "non-ascii",
    ],
)
async def test_a_malformed_authorization_header_is_refused(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get(
        "/api/auth/me", headers={"Authorization": authorization.encode("utf-8")}
    )

    assert_problem(response, 401, "invalid_token")


async def test_a_protected_route_without_credentials_asks_for_them(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/auth/me")

    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_logout_without_a_token_is_refused(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/api/auth/logout"), 401, "not_authenticated")
    assert_problem(await client.post("/api/auth/logout-all"), 401, "not_authenticated")


async def test_public_routes_ignore_a_bad_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"Authorization": "Bearer nonsense"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("subprotocols", "token"),
    [
        pytest.param(["bearer", "abc_DEF-123"], "abc_DEF-123", id="bearer-then-token"),
        pytest.param(["chat", "bearer", "abc"], "abc", id="after-another-protocol"),
        pytest.param(["abc", "bearer"], None, id="token-before-bearer"),
        pytest.param(["bearer"], None, id="no-token"),
        pytest.param(["chat", "abc"], None, id="no-bearer"),
        pytest.param(["bearer", "x" * 129], None, id="too-long"),
        pytest.param(["bearer", "tôi"], None, id="not-ascii"),
    ],
)
def test_a_websocket_token_is_the_subprotocol_right_after_bearer(
    subprotocols: list[str], token: str | None
) -> None:
    assert websocket_bearer_token(subprotocols) == token
