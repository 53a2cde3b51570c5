"""A backing service that is down is answered 503 with Retry-After; a bug stays a 500.

The failures are real: a Redis client and asyncpg pointed at a port or a Unix socket with
nothing behind it, and a real SQL error from the test database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar, get
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from marketplace.embedded import free_port
from marketplace.errors import EXCEPTION_HANDLERS
from marketplace.outages import is_outage


async def _raised(coro: Any) -> BaseException:
    try:
        await coro
    except Exception as exc:
        return exc
    raise AssertionError("expected a failure")


async def test_redis_refusing_connections_is_an_outage() -> None:
    client = Redis(port=free_port(), socket_connect_timeout=1)
    try:
        assert is_outage(await _raised(client.ping()))
    finally:
        await client.aclose()


async def test_a_stopped_postgres_socket_is_an_outage(tmp_path: Path) -> None:
    # A stopped PostgreSQL removes its Unix socket: asyncpg raises FileNotFoundError.
    failure = await _raised(asyncpg.connect(host=str(tmp_path), user="postgres", timeout=2))
    assert isinstance(failure, FileNotFoundError)
    assert is_outage(failure)


async def test_postgres_refusing_connections_through_sqlalchemy_is_an_outage() -> None:
    engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    try:
        async with engine.connect() as connection:
            failure = await _raised(connection.execute(text("SELECT 1")))
    except OSError as exc:
        failure = exc
    finally:
        await engine.dispose()
    assert is_outage(failure)


async def test_an_sql_error_is_not_an_outage(session: AsyncSession) -> None:
    with pytest.raises(DBAPIError) as failure:
        async with session.begin_nested():
            await session.execute(text("SELECT 1 / 0"))
    assert not is_outage(failure.value)


def test_a_missing_file_of_our_own_is_not_an_outage(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as failure:
        (tmp_path / "absent.json").read_text()
    assert not is_outage(failure.value)


async def test_a_request_meeting_redis_down_gets_a_503_with_retry_after() -> None:
    port = free_port()

    @get("/needs-redis")
    async def needs_redis() -> str:
        client = Redis(port=port, socket_connect_timeout=1)
        try:
            await client.get("anything")
        finally:
            await client.aclose()
        return "unreachable"

    @get("/has-a-bug")
    async def has_a_bug() -> str:
        raise KeyError("a bug")

    app = Litestar([needs_redis, has_a_bug], exception_handlers=EXCEPTION_HANDLERS)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        down = await client.get("/needs-redis")
        bug = await client.get("/has-a-bug")

    assert down.status_code == 503
    assert down.headers["Retry-After"] == "2"
    assert down.headers["content-type"].startswith("application/problem+json")
    assert down.json()["code"] == "service_unavailable"
    assert bug.status_code == 500
    assert bug.json()["code"] == "internal_error"
