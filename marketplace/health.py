"""Liveness and readiness: `/health` does no I/O, `/ready` checks what a request needs."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
import structlog
from alembic.config import Config
from alembic.script import ScriptDirectory
from litestar import Controller, Response, get
from litestar.di import NamedDependency
from sqlalchemy import text

from marketplace.errors import problem
from marketplace.resources import Resources
from marketplace.schema import MIGRATIONS_DIR

log = structlog.get_logger(__name__)


@cache
def migration_heads() -> frozenset[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


class HealthRead(msgspec.Struct):
    status: str


class ReadyRead(msgspec.Struct):
    status: str
    database: str
    redis: str
    migrations: str


async def check_readiness(resources: Resources) -> ReadyRead:
    database = redis = migrations = "ok"
    try:
        async with resources.sessionmaker() as session:
            rows = (await session.execute(text("SELECT version_num FROM alembic_version"))).all()
        applied = frozenset(str(r[0]) for r in rows)
        if applied != migration_heads():
            migrations = "behind"
    except Exception as exc:  # readiness reports any failure as not ready
        log.warning("ready_database_check_failed", error=repr(exc))
        database = f"unreachable: {type(exc).__name__}"
        migrations = "unknown"
    try:
        await resources.redis.ping()
    except Exception as exc:  # readiness reports any failure as not ready
        redis = f"unreachable: {type(exc).__name__}"
    ok = database == redis == migrations == "ok"
    return ReadyRead(
        status="ready" if ok else "not_ready", database=database, redis=redis, migrations=migrations
    )


class HealthController(Controller):
    tags = ["system"]
    include_in_schema = True

    @get("/health", summary="Process is up (no I/O)", opt={"public": True})
    async def health(self) -> HealthRead:
        return HealthRead(status="ok")

    @get(
        "/ready",
        summary="Database, Redis and migrations are ready",
        opt={"public": True},
        responses={},
    )
    async def ready(self, resources: NamedDependency[Resources]) -> Response[Any]:
        result = await check_readiness(resources)
        if result.status == "ready":
            return Response(content=result)
        return problem(
            status=503,
            code="not_ready",
            title="Service not ready",
            detail=f"database={result.database} redis={result.redis} "
            f"migrations={result.migrations}",
            extra={"checks": msgspec.to_builtins(result)},
        )
