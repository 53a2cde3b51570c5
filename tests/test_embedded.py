"""The embedded PostgreSQL and Redis of the default run start, keep their data, and stop."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncpg
import pytest
from redis import Redis

from marketplace.embedded import EmbeddedPostgres, EmbeddedRedis
from tests.support.threads import in_thread

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _gone_within(pid: int, seconds: float = 5.0) -> bool:
    """pg_ctl -w returns once the pid file is gone; the process exits a moment later."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _postmaster_pid(pgdata: Path) -> int | None:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().splitlines()[0])


async def _query(url: str, *statements: str) -> object:
    # asyncpg wants the plain libpq spelling; the socket directory rides in ?host=
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        result = None
        for sql in statements:
            result = await connection.fetchval(sql)
        return result
    finally:
        await connection.close()


def test_embedded_postgres_serves_pg_trgm_keeps_data_and_stops(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path)
    pg.start()
    try:
        url = pg.url()
        in_thread(lambda: asyncio.run(_query(url, "CREATE EXTENSION IF NOT EXISTS pg_trgm")))
        similarity = in_thread(
            lambda: asyncio.run(_query(url, "SELECT similarity('buoi da xanh', 'buoi xanh')"))
        )
        assert isinstance(similarity, float)
        assert similarity > 0.3
        in_thread(
            lambda: asyncio.run(
                _query(url, "CREATE TABLE kept (v int)", "INSERT INTO kept VALUES (7)")
            )
        )
        pid = _postmaster_pid(pg.pgdata)
        assert pid is not None
        assert _alive(pid)
    finally:
        pg.stop()
    assert _gone_within(pid)

    again = EmbeddedPostgres(tmp_path)
    again.start()
    try:
        kept = in_thread(lambda: asyncio.run(_query(again.url(), "SELECT v FROM kept")))
        assert kept == 7
    finally:
        again.stop()


def test_embedded_redis_answers_on_its_own_port_and_stops(tmp_path: Path) -> None:
    redis = EmbeddedRedis(tmp_path)
    redis.start()
    pid = redis.pid
    try:
        assert redis.port != 6379
        client = Redis.from_url(redis.url())
        assert client.ping() is True
        client.set("marketplace:embedded:probe", "1")
        client.close()
    finally:
        redis.stop()
    assert pid is not None
    assert _gone_within(pid)
