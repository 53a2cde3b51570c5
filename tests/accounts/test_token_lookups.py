"""Token checks of concurrent requests share statements (accounts/token_lookups.py), and a
shared statement still answers each request for its own token, read after it arrived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from functools import partial

import httpx
import pytest
from asgi_lifespan import LifespanManager
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from marketplace.accounts.credentials import token_digest
from marketplace.accounts.models import Role, User
from marketplace.accounts.repository import TokenOwner, TokenRepository, token_owners
from marketplace.accounts.token_lookups import TokenLookups, token_lookups
from marketplace.app import create_app
from marketplace.db import utcnow
from marketplace.settings import Settings
from tests.accounts.factories import create_user, issue_token
from tests.support.jobs import RecordingSender


async def test_lookups_waiting_together_share_one_statement_and_each_gets_its_own_owner(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    users = [await create_user(session, role=Role.BUYER) for _ in range(5)]
    issued = [await issue_token(session, user) for user in users]
    lookups = TokenLookups(partial(token_owners, connection))
    found = await asyncio.gather(
        *(lookups.owner(token_digest(i.token)) for i in issued), lookups.owner("0" * 64)
    )
    assert lookups.statements == 1
    assert [owner.token_id if owner else None for owner in found] == [
        *(i.token_id for i in issued),
        None,
    ]
    assert [owner.user_id for owner in found if owner] == [user.id for user in users]


async def test_a_lookup_sent_while_another_is_in_flight_goes_in_the_next_statement(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    user = await create_user(session, role=Role.BUYER)
    issued = await issue_token(session, user)
    sent: list[list[str]] = []
    in_flight, release = asyncio.Event(), asyncio.Event()

    async def held_first(digests: Sequence[str]) -> dict[str, TokenOwner]:
        sent.append(list(digests))
        if len(sent) == 1:
            in_flight.set()
            await release.wait()
        return await token_owners(connection, digests)

    lookups = TokenLookups(held_first)
    first = asyncio.create_task(lookups.owner(token_digest(issued.token)))
    await in_flight.wait()
    # Revoked after the first statement left: the later request must see it.
    await TokenRepository(session).revoke(issued.token_id, utcnow())
    second = asyncio.create_task(lookups.owner(token_digest(issued.token)))
    await asyncio.sleep(0)
    release.set()
    owners = await asyncio.gather(first, second)
    assert sent == [[token_digest(issued.token)], [token_digest(issued.token)]]
    assert owners[1] is not None
    assert owners[1].revoked_at is not None


async def test_a_failed_statement_fails_only_the_requests_of_its_batch(
    session: AsyncSession, connection: AsyncConnection
) -> None:
    user = await create_user(session, role=Role.BUYER)
    issued = await issue_token(session, user)
    calls = 0

    async def cut_once(digests: Sequence[str]) -> dict[str, TokenOwner]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionResetError("the database hung up")
        return await token_owners(connection, digests)

    lookups = TokenLookups(cut_once)
    digest = token_digest(issued.token)
    failed = await asyncio.gather(
        lookups.owner(digest), lookups.owner(digest), return_exceptions=True
    )
    assert [type(result) for result in failed] == [ConnectionResetError, ConnectionResetError]
    owner = await lookups.owner(digest)
    assert owner is not None
    assert owner.user_id == user.id


@pytest.fixture
async def served(
    engine: AsyncEngine, settings: Settings, redis: Redis
) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient, list[User], list[str]]]:
    """The app on its own engine (the production token path), its accounts committed and
    deleted afterwards."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        users = [await create_user(session, role=Role.BUYER) for _ in range(40)]
        await session.commit()
        tokens = [(await issue_token(session, user)).token for user in users]
        await session.commit()
    app = create_app(
        settings.with_overrides(database=replace(settings.database, pool_size=4)),
        redis=redis,
        job_sender=RecordingSender(),
        skip_logging_setup=True,
    )
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
            ) as client,
        ):
            yield app, client, users, tokens
    finally:
        async with AsyncSession(engine) as session:
            await session.execute(delete(User).where(User.id.in_([u.id for u in users])))
            await session.commit()


@pytest.mark.concurrency
async def test_concurrent_requests_share_token_statements_and_a_logout_holds_at_once(
    served: tuple[Litestar, httpx.AsyncClient, list[User], list[str]],
) -> None:
    app, client, users, tokens = served

    async def me(token: str) -> httpx.Response:
        return await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})

    answers = await asyncio.gather(*(me(token) for token in tokens))
    assert [a.status_code for a in answers] == [200] * len(tokens)
    assert [a.json()["id"] for a in answers] == [str(user.id) for user in users]
    statements = token_lookups(app.state["resources"]).statements
    assert statements < len(tokens), f"{statements} statements for {len(tokens)} requests"

    logged_out = await client.post(
        "/api/auth/logout", headers={"Authorization": f"Bearer {tokens[0]}"}
    )
    assert logged_out.status_code == 204, logged_out.text
    after = await asyncio.gather(*(me(token) for token in tokens[:5]))
    assert [a.status_code for a in after] == [401, 200, 200, 200, 200]
    assert after[0].json()["code"] == "invalid_token"
