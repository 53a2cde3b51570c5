"""Login rate limits per account and per client address: beyond the limit, 429 with
`Retry-After`, whether or not the password is right."""

from __future__ import annotations

import httpx
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.app import create_app
from marketplace.settings import Settings
from tests.accounts.factories import (
    DEFAULT_PASSWORD,
    ClientAt,
    create_user,
    unique_ip,
    unique_login,
)
from tests.support.jobs import RecordingSender


async def attempt(client: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"login": login, "password": password})


def assert_rate_limited(response: httpx.Response, settings: Settings) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= settings.security.login_window_seconds


async def test_an_account_is_locked_for_the_window_after_too_many_attempts(
    session: AsyncSession, client_at: ClientAt, settings: Settings
) -> None:
    user = await create_user(session)
    limit = settings.security.login_attempts_per_account

    # From a new address each time: only the account's window can fill up.
    for _ in range(limit):
        response = await attempt(client_at(unique_ip()), user.login, "wrong-password")
        assert response.status_code == 401

    assert_rate_limited(await attempt(client_at(unique_ip()), user.login, "wrong-again"), settings)
    # Even the right password waits for the window to end.
    assert_rate_limited(
        await attempt(client_at(unique_ip()), user.login, DEFAULT_PASSWORD), settings
    )


async def test_the_account_limit_applies_to_every_spelling_of_the_login(
    session: AsyncSession, client_at: ClientAt, settings: Settings
) -> None:
    user = await create_user(session)
    for n in range(settings.security.login_attempts_per_account):
        spelling = user.login.upper() if n % 2 else f" {user.login} "
        await attempt(client_at(unique_ip()), spelling, "wrong-password")

    assert_rate_limited(await attempt(client_at(unique_ip()), user.login, "x"), settings)


async def test_an_unknown_login_is_limited_like_a_known_one(
    client_at: ClientAt, settings: Settings
) -> None:
    login = unique_login()
    for _ in range(settings.security.login_attempts_per_account):
        assert (await attempt(client_at(unique_ip()), login, "guess")).status_code == 401

    assert_rate_limited(await attempt(client_at(unique_ip()), login, "guess"), settings)


async def test_an_address_is_limited_across_many_accounts(
    client_at: ClientAt, settings: Settings
) -> None:
    client = client_at(unique_ip())
    for _ in range(settings.security.login_attempts_per_ip):
        assert (await attempt(client, unique_login(), "guess")).status_code == 401

    assert_rate_limited(await attempt(client, unique_login(), "guess"), settings)
    # Another address is not affected.
    assert (await attempt(client_at(unique_ip()), unique_login(), "guess")).status_code == 401


async def test_a_successful_login_does_not_reset_the_address_window(
    session: AsyncSession, client_at: ClientAt, settings: Settings
) -> None:
    user = await create_user(session)
    client = client_at(unique_ip())
    assert (await attempt(client, user.login, DEFAULT_PASSWORD)).status_code == 200
    for _ in range(settings.security.login_attempts_per_ip - 1):
        await attempt(client, unique_login(), "guess")

    assert_rate_limited(await attempt(client, user.login, DEFAULT_PASSWORD), settings)


async def test_a_successful_login_clears_the_accounts_own_window(
    session: AsyncSession, client_at: ClientAt, settings: Settings
) -> None:
    user = await create_user(session)
    limit = settings.security.login_attempts_per_account
    for _ in range(limit - 1):
        await attempt(client_at(unique_ip()), user.login, "typo-password")
    assert (await attempt(client_at(unique_ip()), user.login, DEFAULT_PASSWORD)).status_code == 200

    for _ in range(limit):
        response = await attempt(client_at(unique_ip()), user.login, "typo-password")
        assert response.status_code == 401


async def test_without_redis_login_fails_closed_with_503(
    session: AsyncSession,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    job_sender: RecordingSender,
) -> None:
    user = await create_user(session)
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    app = create_app(
        settings,
        sessionmaker=sessionmaker,
        redis=unreachable,
        job_sender=job_sender,
        skip_logging_setup=True,
    )

    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(unique_ip(), 1)),
            base_url="http://testserver",
        ) as client,
    ):
        response = await attempt(client, user.login, DEFAULT_PASSWORD)
    await unreachable.aclose()

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable"
    assert "token" not in response.json()
