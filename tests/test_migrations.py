"""Alembic is the only way the schema changes: the models and the migrations must agree."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.health import migration_heads, pending_migrations
from marketplace.model_registry import load_all_models
from marketplace.schema import alembic_config
from tests.support.services import ServiceUrls
from tests.support.threads import in_thread


def _diff(sync_conn: Connection) -> list[Any]:
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return list(compare_metadata(context, load_all_models().metadata))


async def test_autogenerate_finds_no_difference_between_models_and_migrations(
    connection: AsyncConnection,
) -> None:
    diff = await connection.run_sync(_diff)
    assert diff == [], f"models and migrations disagree: {diff}"


async def test_the_test_database_is_at_every_head(connection: AsyncConnection) -> None:
    rows = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars()
    applied = frozenset(rows)
    assert applied
    assert pending_migrations(applied) == []


def test_a_database_stopped_on_two_domain_branches_is_reported_behind_by_what_it_lacks() -> None:
    """Livestreams and impact applied, orders not: only orders and what follows are pending,
    never the ancestors both branches already carry (0005, 0003 through 0005's parents)."""
    pending = pending_migrations(frozenset({"0007_livestreams", "0008_impact"}))
    assert "0006_orders_payments" in pending
    assert "0009_merge_domains" in pending
    for done in ("0001_foundation", "0003_geo", "0005_sellers_catalog", "0007_livestreams"):
        assert done not in pending


def test_a_database_at_head_or_empty_is_judged_correctly() -> None:
    assert pending_migrations(migration_heads()) == []
    assert "0001_foundation" in pending_migrations(frozenset())
    assert pending_migrations(frozenset({"not_our_revision"})) == ["not_our_revision"]


def test_revision_files_have_dated_names() -> None:
    from marketplace.schema import MIGRATIONS_DIR  # noqa: PLC0415

    names = [p.name for p in (MIGRATIONS_DIR / "versions").glob("*.py")]
    assert names, "no migrations"
    for name in names:
        assert re.match(r"^\d{4}_\d{2}_\d{2}_\d{4}-\w+\.py$", name), name


def test_history_has_a_single_head() -> None:
    """Parallel branches must be merged before they land, so `upgrade head` is unambiguous."""
    assert len(migration_heads()) == 1


def test_every_migration_downgrades_to_base_and_upgrades_again(
    service_urls: ServiceUrls,
) -> None:
    """Run in a scratch database of its own; the shared test database stays at head."""
    admin_url = make_url(service_urls.admin_database_url)
    name = f"mp_updown_{uuid.uuid4().hex[:8]}"
    url = admin_url.set(database=name).render_as_string(hide_password=False)

    async def admin(statement: str) -> None:
        engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        async with engine.connect() as conn:
            await conn.execute(text(statement))
        await engine.dispose()

    in_thread(lambda: asyncio.run(admin(f'CREATE DATABASE "{name}"')))
    try:
        config = alembic_config(url)
        in_thread(lambda: command.upgrade(config, "head"))
        in_thread(lambda: command.downgrade(config, "base"))
        in_thread(lambda: command.upgrade(config, "head"))
    finally:
        in_thread(lambda: asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))
