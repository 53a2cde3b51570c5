"""Liveness and readiness: `/health` does no I/O, `/ready` checks what a request needs."""

from __future__ import annotations

from collections.abc import Sequence
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
def migration_script() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def migration_heads() -> frozenset[str]:
    return frozenset(migration_script().get_heads())


def pending_migrations(applied: frozenset[str]) -> list[str]:
    """Revisions `upgrade heads` would still apply. Not a set comparison with the heads:
    Alembic drops a revision another one `depends_on` from alembic_version."""
    script = migration_script()
    known = {r.revision for r in script.walk_revisions()}
    if not applied:
        return sorted(known)
    if not applied <= known:
        return sorted(applied - known)  # a revision this code does not know: not our schema
    done: set[str] = set()
    todo = list(applied)
    while todo:
        revision = script.get_revision(todo.pop())
        if revision is None or revision.revision in done:
            continue
        done.add(revision.revision)
        todo.extend(_as_tuple(revision.down_revision) + _as_tuple(revision.dependencies))
    return sorted(known - done)


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


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
        if pending_migrations(applied):
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
