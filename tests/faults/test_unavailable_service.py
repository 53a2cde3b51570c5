"""The 503 for an outage names the service that is down, from real driver failures: a
Redis client and an SQLAlchemy engine pointed at a port with nothing behind it."""

from __future__ import annotations

import httpx
from litestar import Litestar, get
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.embedded import free_port
from marketplace.errors import EXCEPTION_HANDLERS
from marketplace.redis_clients import connect_redis


@get("/needs-redis")
async def needs_redis() -> str:
    client = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        await client.get("anything")
    finally:
        await client.aclose()
    return "unreachable"


@get("/needs-the-database")
async def needs_the_database() -> str:
    engine = create_async_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/marketplace", poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    return "unreachable"


@get("/pipeline-to-redis")
async def pipeline_to_redis() -> str:
    client = Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr("n")
            await pipe.execute()
    finally:
        await client.aclose()
    return "unreachable"


async def _get(path: str) -> httpx.Response:
    app = Litestar(
        [needs_redis, needs_the_database, pipeline_to_redis], exception_handlers=EXCEPTION_HANDLERS
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_redis_down_is_a_503_naming_redis() -> None:
    for path in ("/needs-redis", "/pipeline-to-redis"):
        response = await _get(path)

        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        problem = response.json()
        assert problem["code"] == "service_unavailable"
        assert problem["service"] == "redis"
        assert problem["detail"].startswith("Redis is unreachable")


async def test_the_database_down_is_a_503_naming_the_database() -> None:
    response = await _get("/needs-the-database")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    problem = response.json()
    assert problem["code"] == "service_unavailable"
    assert problem["service"] == "database"
    assert problem["detail"].startswith("The database is unreachable")
