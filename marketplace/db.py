"""Declarative base, engine and sessionmaker factories.

One engine per process: the API creates it in its lifespan, each worker process after fork.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, Uuid, func
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from marketplace.fair_pool import FairAsyncQueuePool
from marketplace.settings import DatabaseSettings

# PostgreSQL's bigint (OFFSET, sequence numbers): a query parameter bounded by it is refused as
# bad input instead of overflowing the driver.
BIGINT_MAX = 2**63 - 1

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """UUID primary key and UTC audit timestamps on every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), uuid.UUID: Uuid()}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(
        default=utcnow, server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.now(), nullable=False
    )


def create_engine(settings: DatabaseSettings, *, pre_ping: bool = False) -> AsyncEngine:
    if not settings.url:
        raise ValueError("database url is empty: set DATABASE_URL or use `marketplace demo`")
    return create_async_engine(
        settings.url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        # No ping before each checkout by default: it is a round trip on every request. A
        # connection found dead fails its one request (a 503), and SQLAlchemy then
        # invalidates every connection the pool made before it, so a restarted database
        # costs one error. A pool used once per batch of many orders pings (`pre_ping`).
        pool_pre_ping=pre_ping,
        # Waiting requests get connections in arrival order (fair_pool.py): the stock pool
        # let newcomers take them first and starved some requests for seconds under load.
        poolclass=FairAsyncQueuePool,
        echo=settings.echo,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are built from objects after the unit of work commits.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
