"""Every kind of bad token is refused with 401 on protected routes of every domain, not only
on `/api/auth/me` (the accounts tests cover that one route in depth); logins beyond the
limit get 429, and no secret leaves in a body, a header, a structlog event or a stdlib log
record (tests/accounts/test_no_secrets.py scans structlog events only)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from marketplace.accounts.credentials import new_token
from marketplace.accounts.models import ApiToken, Role, User
from marketplace.db import utcnow
from marketplace.settings import Settings
from tests.accounts.factories import auth_headers, create_user, unique_ip, unique_login

PROTECTED = (
    "/api/orders",
    "/api/fulfilments",
    "/api/ledger",
    "/api/households/mine",
    "/api/cooperatives/mine",
    "/api/impact/households?month_from=2026-01&month_to=2026-03",
    "/api/impact/income-shares",
    "/api/host/livestreams",
    "/api/host/verification",
    "/api/follows",
    "/api/seller/products",
    "/api/admin/users",
)


async def bad_tokens(session: AsyncSession, client: httpx.AsyncClient) -> dict[str, str]:
    """One Authorization value per way a token can be wrong, for an account that would
    otherwise be allowed (an admin, so only the token decides)."""
    admin = await create_user(session, role=Role.ADMIN)
    expired = await auth_headers(session, admin, now=utcnow() - timedelta(days=8))
    revoked = await auth_headers(session, admin)
    logout = await client.post("/api/auth/logout", headers=revoked)
    assert logout.status_code == 204
    return {
        "expired": expired["Authorization"],
        "revoked": revoked["Authorization"],
        "never-issued": f"Bearer {new_token()}",
        "truncated": revoked["Authorization"][:-4],
        "two-words": "Bearer two words",
        "basic-scheme": "Basic bmd1eWVuOnZhbmFu",
        "blank": "Bearer ",
    }


async def test_a_bad_token_gets_401_on_every_domains_protected_routes(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    tokens = await bad_tokens(session, client)
    good = await auth_headers(session, await create_user(session, role=Role.ADMIN))
    # The refusals below are the token's doing: the same admin with a valid token passes
    # authentication everywhere (some routes then ask for a parameter or another role).
    opened = [(await client.get(path, headers=good)).status_code for path in PROTECTED]
    assert 401 not in opened, opened
    assert opened.count(200) >= 7, opened

    outcomes = {}
    for kind, authorization in tokens.items():
        for path in PROTECTED:
            response = await client.get(path, headers={"Authorization": authorization})
            outcomes[(kind, path)] = (response.status_code, response.json().get("code"))
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["www-authenticate"] == "Bearer"

    assert set(outcomes.values()) == {(401, "invalid_token")}, {
        key: outcome for key, outcome in outcomes.items() if outcome != (401, "invalid_token")
    }


@pytest.mark.parametrize("path", PROTECTED)
async def test_no_token_at_all_gets_401_not_authenticated(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 401, response.text
    assert response.json()["code"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_login_beyond_the_limit_is_429_and_no_body_header_or_log_line_leaks_a_secret(
    *,
    session: AsyncSession,
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = await auth_headers(session, await create_user(session, role=Role.ADMIN))
    password = "mat-khau-rat-bi-mat-" + uuid.uuid4().hex[:8]
    login = unique_login()
    clients: list[httpx.AsyncClient] = []

    def fresh_address() -> httpx.AsyncClient:
        clients.append(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(unique_ip(), 50123)),
                base_url="http://testserver",
            )
        )
        return clients[-1]

    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        registered = await client.post(
            "/api/auth/register",
            json={"login": login, "password": password, "display_name": "Ngô Thị Mai"},
        )
        logged_in = await fresh_address().post(
            "/api/auth/login", json={"login": login, "password": password}
        )
        token = logged_in.json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        responses = [
            registered,
            await client.get("/api/auth/me", headers=bearer),
            await client.get("/api/admin/users", headers=admin),
            await client.post("/api/auth/logout", headers=bearer),
            await client.get("/api/auth/me", headers=bearer),
        ]
        attempts = [
            await fresh_address().post(
                "/api/auth/login", json={"login": login, "password": f"{password}-sai"}
            )
            for _ in range(settings.security.login_attempts_per_account + 1)
        ]
    for c in clients:
        await c.aclose()

    assert [r.status_code for r in responses] == [201, 200, 200, 204, 401]
    assert [r.status_code for r in attempts[:-1]] == [401] * (len(attempts) - 1)
    limited = attempts[-1]
    assert limited.status_code == 429, limited.text
    assert 1 <= int(limited.headers["retry-after"]) <= settings.security.login_window_seconds
    hashes = (await session.scalars(select(User.password_hash))).all()
    digests = (await session.scalars(select(ApiToken.token_hash))).all()
    secrets = [*hashes, *digests, token, admin["Authorization"][7:], password]
    # Only the login's own response carries its new token.
    seen = [r.text + repr(r.headers) for r in [*responses, *attempts]]
    seen.append(logged_in.text.replace(token, "") + repr(logged_in.headers))
    logged = json.dumps(events, default=str) + caplog.text
    assert events, "the flow logs something, so the log scan is not vacuous"
    for secret in secrets:
        assert all(secret not in text for text in seen), "a secret in a response"
        assert secret not in logged, "a secret in a log line"
    assert all("$argon2" not in text for text in [*seen, logged])
