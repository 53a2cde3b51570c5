"""What every benchmark needs around its measurement: a database of its own, a free port,
the server's readiness, percentiles. Imported by the scripts beside it (`python bench/x.py`
puts this directory on the path)."""

from __future__ import annotations

import contextlib
import os
import socket
import time

import asyncpg
import httpx

ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (`q` in 0..1); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def _as_admin(statement: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def create_database(name: str) -> str:
    """A new database on the bench's server; its DSN."""
    await _as_admin(f'CREATE DATABASE "{name}"')
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


async def drop_database(name: str) -> None:
    await _as_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_ready(
    base: str, timeout: float = 60, *, path: str = "/health", interval: float = 0.3
) -> None:
    """Until `base + path` answers 200; raises after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + path, timeout=2).status_code == 200:
                return
        time.sleep(interval)
    raise RuntimeError("the server did not become ready")
