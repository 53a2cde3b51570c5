"""Test wiring: one migrated database per xdist worker and run, each test in a rolled-back
transaction, real Redis, and the app built by `create_app` with boundary fakes only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from marketplace.app import create_app
from marketplace.schema import upgrade_to_head
from marketplace.settings import (
    DatabaseSettings,
    Mode,
    RedisSettings,
    SecuritySettings,
    Settings,
    StorageSettings,
)
from marketplace.unit_of_work import UnitOfWork
from tests.support.jobs import RecordingSender
from tests.support.services import ServiceUrls, resolve_service_urls, stop_embedded
from tests.support.threads import in_thread

RUN_ID = uuid.uuid4().hex[:8]


def _worker_index(worker_id: str) -> int:
    return int(worker_id.removeprefix("gw")) if worker_id.startswith("gw") else 0


@pytest.fixture(scope="session")
def service_urls() -> Iterator[ServiceUrls]:
    yield resolve_service_urls()
    stop_embedded()


@pytest.fixture(scope="session")
def test_database_url(service_urls: ServiceUrls, worker_id: str) -> Iterator[str]:
    """A database of our own for this run and worker, created and migrated once."""
    admin_url = make_url(service_urls.admin_database_url)
    name = f"mp_test_{RUN_ID}_{worker_id}".lower()
    url = admin_url.set(database=name).render_as_string(hide_password=False)

    async def create() -> None:
        admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()

    async def drop() -> None:
        admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    # Own threads: asyncio.run must not share a thread with pytest-asyncio's loop.
    in_thread(lambda: asyncio.run(create()))
    in_thread(lambda: upgrade_to_head(url))
    yield url
    in_thread(lambda: asyncio.run(drop()))


@pytest.fixture(scope="session")
def redis_url(service_urls: ServiceUrls, worker_id: str) -> str:
    """One Redis logical database per xdist worker; tests use unique keys, nothing is flushed."""
    base = make_url(service_urls.redis_url.replace("redis://", "postgresql://", 1))
    db = 1 + _worker_index(worker_id) % 15
    return f"redis://{base.host}:{base.port or 6379}/{db}"


@pytest.fixture(scope="session")
def settings(
    test_database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    var_dir = tmp_path_factory.mktemp("var")
    return Settings(
        mode=Mode.EMBEDDED,
        var_dir=var_dir,
        log_json=True,
        database=DatabaseSettings(url=test_database_url, pool_size=5, max_overflow=5),
        redis=RedisSettings(url=redis_url),
        storage=StorageSettings(root=Path(var_dir) / "media"),
        security=SecuritySettings(
            secret_key="test-secret-key-" + "x" * 32,
            pii_hmac_key="test-pii-hmac-key-" + "y" * 32,
            pii_encryption_key="ZmFrZS1rZXktZm9yLXRlc3RzLW9ubHktMzJieXRlcyE=",
            # Cheap argon2 keeps login tests fast; production costs are the defaults.
            argon2_time_cost=1,
            argon2_memory_cost=1024,
        ),
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(settings.database.url, pool_size=5, max_overflow=10)
    yield eng
    await eng.dispose()


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """The outer transaction every test runs in; rolled back whatever the test committed."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield conn
        finally:
            if outer.is_active:
                await outer.rollback()


@pytest.fixture
def sessionmaker(connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def session(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as s:
        yield s


@pytest.fixture
def job_sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
async def uow(
    sessionmaker: async_sessionmaker[AsyncSession], job_sender: RecordingSender
) -> AsyncIterator[UnitOfWork]:
    async with UnitOfWork(sessionmaker, job_sender) as unit:
        yield unit


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def app(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    job_sender: RecordingSender,
) -> Litestar:
    return create_app(
        settings,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=job_sender,
        skip_logging_setup=True,
    )


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """httpx on the ASGI app in the test's own event loop (Litestar's AsyncTestClient runs
    the app on a portal thread, where the test's connection-bound session cannot follow)."""
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as c,
    ):
        yield c
