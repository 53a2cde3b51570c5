"""The dashboard's session handling without a browser: the login cookie, who may log in,
the CSRF check on forms, logout revoking the token, and the page's security headers."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import JurisdictionLevel, Role, User
from tests.accounts.factories import DEFAULT_PASSWORD, ClientAt, create_user, unique_ip
from tests.sellers.factories import HUONG_TRA


async def _official(session: AsyncSession) -> User:
    return await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_level=JurisdictionLevel.COMMUNE,
        jurisdiction_code=HUONG_TRA,
    )


async def _log_in(client: httpx.AsyncClient, user: User) -> httpx.Response:
    return await client.post(
        "/impact/login", data={"login": user.login, "password": DEFAULT_PASSWORD}
    )


async def test_an_official_logs_in_and_gets_an_http_only_strict_cookie(
    session: AsyncSession, client_at: ClientAt
) -> None:
    client = client_at(unique_ip())
    official = await _official(session)

    response = await _log_in(client, official)

    assert response.status_code == 303
    assert response.headers["location"] == "/impact/dashboard"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("mp_official=")
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    assert "Path=/impact" in cookie
    page = await client.get("/impact/dashboard")
    assert page.status_code == 200
    assert "Phường Hương Trà" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_the_cookie_is_not_accepted_by_the_api(
    session: AsyncSession, client_at: ClientAt
) -> None:
    client = client_at(unique_ip())
    await _log_in(client, await _official(session))

    response = await client.get("/api/impact/households")

    assert response.status_code == 401


async def test_a_farmer_cannot_log_in_to_the_dashboard(
    session: AsyncSession, client_at: ClientAt
) -> None:
    client = client_at(unique_ip())
    farmer = await create_user(session, role=Role.FARMER)

    response = await _log_in(client, farmer)

    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_a_wrong_password_shows_the_form_again_without_a_cookie(
    session: AsyncSession, client_at: ClientAt
) -> None:
    client = client_at(unique_ip())
    official = await _official(session)

    response = await client.post(
        "/impact/login", data={"login": official.login, "password": "sai-mat-khau"}
    )

    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert 'name="password"' in response.text


async def test_without_a_session_the_dashboard_sends_the_browser_to_the_login_form(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/impact/dashboard", headers={"Accept": "text/html"})
    api_like = await client.get("/impact/dashboard")

    assert response.status_code == 303
    assert response.headers["location"] == "/impact/login"
    assert api_like.status_code == 401


async def test_an_export_form_without_the_csrf_token_is_refused(
    session: AsyncSession, client_at: ClientAt, job_sender: object
) -> None:
    client = client_at(unique_ip())
    await _log_in(client, await _official(session))

    response = await client.post(
        "/impact/dashboard/exports", data={"format": "csv", "csrf_token": "x" * 64}
    )

    assert response.status_code == 403
    assert "impact.build_export" not in job_sender.names()  # type: ignore[attr-defined]


async def test_the_export_button_queues_an_export_and_shows_its_progress(
    session: AsyncSession, client_at: ClientAt, job_sender: object
) -> None:
    client = client_at(unique_ip())
    await _log_in(client, await _official(session))
    page = await client.get("/impact/dashboard")
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match is not None

    response = await client.post(
        "/impact/dashboard/exports", data={"format": "xlsx", "csrf_token": match.group(1)}
    )

    assert response.status_code == 303
    progress = await client.get(response.headers["location"])
    assert progress.status_code == 200
    assert "queued" in progress.text
    assert "impact.build_export" in job_sender.names()  # type: ignore[attr-defined]


async def test_logging_out_revokes_the_token(session: AsyncSession, client_at: ClientAt) -> None:
    client = client_at(unique_ip())
    login = await _log_in(client, await _official(session))
    token = login.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    page = await client.get("/impact/dashboard")
    match = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', page.text)
    assert match is not None

    response = await client.post("/impact/logout", data={"csrf_token": match.group(1)})

    assert response.status_code == 303
    api = await client.get("/api/impact/households", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401
