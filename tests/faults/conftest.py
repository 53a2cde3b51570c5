"""The fault tests' own PostgreSQL and Redis, the production API server on them, and the
shop it sells from.

Nothing here uses the suite's shared services: the cluster is initialised in a temporary
directory and listens on a free port, Redis is the embedded binary on another, and each
fault is done to them by the handle this session holds (the data directory's postmaster,
the Redis child's pid). The API runs as `uvicorn --factory marketplace.app:create_app` in a
process of its own, as in production: settings from the environment, its own engine
(`pool_pre_ping`), its own Redis clients and the real Celery sender; WebSockets need a real
server anyway, and a fault that wedges the server cannot wedge the test's event loop.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.accounts.models import Role
from marketplace.embedded import EmbeddedRedis, embedded_environment, free_port
from marketplace.livestreams.models import MAX_PER_BUYER_LIMIT
from marketplace.schema import upgrade_to_head
from tests.accounts.factories import DEFAULT_PASSWORD, create_user
from tests.faults.services import (
    DATABASE,
    OwnedPostgres,
    OwnedProcess,
    api_process,
    wait_until_healthy,
)
from tests.orders.factories import SHIPPING_BODY, create_live_item, create_variant
from tests.sellers.factories import PII_KEYS
from tests.support.threads import in_thread

SECRET_KEY = "test-secret-key-" + "x" * 32
"""The `settings` fixture's keys, so factories' encrypted rows read back on the server."""


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    """Data, sockets and every process's log; FAULTS_KEEP=1 keeps it for a post-mortem."""
    # Short, under /tmp: PostgreSQL's socket path must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="mp-faults-"))
    yield root
    if not os.environ.get("FAULTS_KEEP"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def owned_postgres(work_dir: Path) -> Iterator[OwnedPostgres]:
    postgres = OwnedPostgres(work_dir / "postgres")
    postgres.init()
    postgres.start()

    async def create_database() -> None:
        connection = await asyncpg.connect(postgres.dsn("postgres"))
        try:
            await connection.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await connection.close()

    try:
        in_thread(lambda: asyncio.run(create_database()))
        in_thread(lambda: upgrade_to_head(postgres.url()))
        yield postgres
    finally:
        postgres.stop("fast")


@pytest.fixture(scope="session")
def owned_redis(work_dir: Path) -> Iterator[EmbeddedRedis]:
    redis = EmbeddedRedis(work_dir / "redis-root")
    redis.start()
    yield redis
    redis.stop()


def service_environment(
    work_dir: Path, postgres: OwnedPostgres, redis: EmbeddedRedis, redis_db: int = 0
) -> dict[str, str]:
    """What the API and the workers are started with: our services, the fixtures' keys,
    cheap password hashes, and logs as JSON lines."""
    env = embedded_environment(work_dir / "var", postgres.url(), redis.url(redis_db))
    env.update(
        {
            "SECRET_KEY": SECRET_KEY,
            "PII_HMAC_KEY": PII_KEYS.pii_hmac_key,
            "PII_ENCRYPTION_KEY": PII_KEYS.pii_encryption_key,
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_COST": "1024",
            "LOGIN_ATTEMPTS_PER_IP": "10000",
            "DATABASE_POOL_SIZE": "5",
            "DATABASE_MAX_OVERFLOW": "5",
            "LOG_LEVEL": "WARNING",
            "LOG_JSON": "true",
        }
    )
    for name in ("TEST_DATABASE_URL", "TEST_REDIS_URL"):
        env.pop(name, None)
    return env


@dataclass(frozen=True)
class Api:
    process: OwnedProcess
    base_url: str

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)


@pytest.fixture(scope="session")
def api(work_dir: Path, owned_postgres: OwnedPostgres, owned_redis: EmbeddedRedis) -> Iterator[Api]:
    port = free_port()
    process = api_process(
        service_environment(work_dir, owned_postgres, owned_redis), port, work_dir / "api.log"
    )
    process.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(process, base_url)
        yield Api(process, base_url)
    finally:
        process.stop()


@pytest.fixture(scope="session")
async def engine(owned_postgres: OwnedPostgres) -> AsyncIterator[AsyncEngine]:
    """The tests' own view of the database: no pool, so a restart leaves nothing stale."""
    eng = create_async_engine(owned_postgres.url(), poolclass=NullPool)
    yield eng
    await eng.dispose()


@pytest.fixture
async def http(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=30.0) as client:
        yield client


@dataclass(frozen=True)
class Shop:
    """What one test sells: catalog variants and a pinned livestream item, fresh per test
    so its stock arithmetic is its own."""

    variant_ids: list[uuid.UUID]
    initial_stock: int
    session_id: uuid.UUID
    item_id: uuid.UUID
    stock_cap: int


async def open_shop(
    engine: AsyncEngine, *, variants: int = 1, stock: int = 100, stock_cap: int = 100
) -> Shop:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        made = [await create_variant(session, available=stock) for _ in range(variants)]
        item = await create_live_item(
            session,
            await create_variant(session, available=0),
            stock_cap=stock_cap,
            per_buyer_limit=MAX_PER_BUYER_LIMIT,
        )
        await session.commit()
    return Shop(
        variant_ids=[v.id for v in made],
        initial_stock=stock,
        session_id=item.session_id,
        item_id=item.id,
        stock_cap=stock_cap,
    )


@dataclass(frozen=True)
class Buyer:
    user_id: uuid.UUID
    token: str


async def log_in_buyers(engine: AsyncEngine, http: httpx.AsyncClient, count: int) -> list[Buyer]:
    """Buyers made in the database, logged in over HTTP as a client would."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        users = [await create_user(session, role=Role.BUYER) for _ in range(count)]
        await session.commit()
    buyers = []
    for user in users:
        response = await http.post(
            "/api/auth/login", json={"login": user.login, "password": DEFAULT_PASSWORD}
        )
        assert response.status_code == 200, response.text
        buyers.append(Buyer(user.id, response.json()["token"]))
    return buyers


def catalog_body(variant_ids: list[uuid.UUID], quantity: int = 1) -> dict[str, Any]:
    return {
        "lines": [{"variant_id": str(v), "quantity": quantity} for v in variant_ids],
        "payment_method": "vietqr",
        "shipping": dict(SHIPPING_BODY),
    }


def live_body(item_id: uuid.UUID, quantity: int = 1) -> dict[str, Any]:
    return {
        "lines": [{"livestream_item_id": str(item_id), "quantity": quantity}],
        "payment_method": "vietqr",
        "shipping": dict(SHIPPING_BODY),
    }


async def place(
    http: httpx.AsyncClient, buyer: Buyer, key: str, body: dict[str, Any]
) -> httpx.Response:
    return await http.post(
        "/api/orders",
        json=body,
        headers={"Authorization": f"Bearer {buyer.token}", "Idempotency-Key": key},
    )


def assert_clean_unavailable(response: httpx.Response, service: str) -> None:
    """A 503 a client can act on: problem+json naming the service that is down, when to
    retry, and nothing of the server's insides."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers["retry-after"]) >= 1
    problem = response.json()
    assert problem["code"] == "service_unavailable"
    assert problem["status"] == 503
    assert problem["service"] == service, response.text
    for leak in ("Traceback", 'File "', "asyncpg", "sqlalchemy", "redis.exceptions", "/work/"):
        assert leak not in response.text, response.text


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        rows: list[asyncpg.Record] = await connection.fetch(sql, *args)
        return rows
    finally:
        await connection.close()


async def stock_books(dsn: str, shop: Shop) -> dict[str, tuple[int, int]]:
    """Per variant and for the item: (available now, units of holds not released). The
    first plus the second is always the initial stock: nothing taken without a hold."""
    books: dict[str, tuple[int, int]] = {}
    for variant_id in shop.variant_ids:
        rows = await fetch(
            dsn,
            "SELECT v.available, COALESCE(SUM(h.quantity) FILTER ("
            " WHERE h.released_at IS NULL AND h.livestream_item_id IS NULL), 0)::int AS held"
            " FROM variants v LEFT JOIN stock_holds h ON h.variant_id = v.id"
            " WHERE v.id = $1 GROUP BY v.available",
            variant_id,
        )
        books[str(variant_id)] = (rows[0]["available"], rows[0]["held"])
    rows = await fetch(
        dsn,
        "SELECT i.available, COALESCE(SUM(h.quantity) FILTER ("
        " WHERE h.released_at IS NULL), 0)::int AS held"
        " FROM livestream_items i LEFT JOIN stock_holds h ON h.livestream_item_id = i.id"
        " WHERE i.id = $1 GROUP BY i.available",
        shop.item_id,
    )
    books[str(shop.item_id)] = (rows[0]["available"], rows[0]["held"])
    return books


async def orders_of(dsn: str, buyers: list[Buyer]) -> dict[uuid.UUID, dict[str, int]]:
    """Every order of these buyers with its lines, the lines' holds and units, so a
    half-written order (no lines, a line without its hold) shows."""
    rows = await fetch(
        dsn,
        "SELECT o.id, COUNT(DISTINCT l.id)::int AS lines, COUNT(DISTINCT h.id)::int AS holds,"
        " COALESCE(SUM(l.quantity), 0)::int AS units,"
        " COALESCE(SUM(h.quantity), 0)::int AS held_units"
        " FROM orders o LEFT JOIN order_lines l ON l.order_id = o.id"
        " LEFT JOIN stock_holds h ON h.order_line_id = l.id"
        " WHERE o.buyer_user_id = ANY($1::uuid[])"
        " GROUP BY o.id",
        [buyer.user_id for buyer in buyers],
    )
    return {
        row["id"]: {
            "lines": row["lines"],
            "holds": row["holds"],
            "units": row["units"],
            "held_units": row["held_units"],
        }
        for row in rows
    }


async def idempotency_records(dsn: str, keys: list[str]) -> dict[str, asyncpg.Record]:
    rows = await fetch(
        dsn,
        "SELECT key, status, response_status, order_id FROM idempotency_records"
        " WHERE key = ANY($1::text[])",
        keys,
    )
    return {row["key"]: row for row in rows}
