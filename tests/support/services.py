"""Where the tests find PostgreSQL and Redis: env vars, else the local servers, else embedded."""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_embedded: dict[str, Any] = {}


@dataclass(frozen=True)
class ServiceUrls:
    admin_database_url: str
    """A URL to a database we may CREATE DATABASE from (postgresql+asyncpg://...)."""
    redis_url: str


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def resolve_service_urls() -> ServiceUrls:
    db = os.environ.get("TEST_DATABASE_URL")
    redis = os.environ.get("TEST_REDIS_URL")
    if not db:
        if _reachable("127.0.0.1", 5432):
            db = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
        else:
            db = _embedded_postgres_url()
    if not redis:
        redis = (
            "redis://127.0.0.1:6379/0" if _reachable("127.0.0.1", 6379) else _embedded_redis_url()
        )
    if db.startswith("postgresql://"):
        db = "postgresql+asyncpg://" + db.removeprefix("postgresql://")
    return ServiceUrls(admin_database_url=db, redis_url=redis)


def _embedded_postgres_url() -> str:
    from marketplace.embedded import EmbeddedPostgres  # noqa: PLC0415

    if "pg" not in _embedded:
        root = Path(tempfile.mkdtemp(prefix="mp-test-pg-"))
        _embedded["pg"] = EmbeddedPostgres(root)
        _embedded["pg"].start()
    url: str = _embedded["pg"].url()
    return url


def _embedded_redis_url() -> str:
    from marketplace.embedded import EmbeddedRedis  # noqa: PLC0415

    if "redis" not in _embedded:
        root = Path(tempfile.mkdtemp(prefix="mp-test-redis-"))
        _embedded["redis"] = EmbeddedRedis(root)
        _embedded["redis"].start()
    url: str = _embedded["redis"].url()
    return url


def stop_embedded() -> None:
    for service in _embedded.values():
        service.stop()
    _embedded.clear()
