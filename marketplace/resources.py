"""Process-wide resources the app factory builds once and hands to request dependencies."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from litestar.datastructures import State
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.db import utcnow
from marketplace.jobs import JobSender
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

Clock = Callable[[], datetime]
T = TypeVar("T")


@dataclass(slots=True)
class Resources:
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    job_sender: JobSender
    clock: Clock = utcnow
    engine: AsyncEngine | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    """Boundary collaborators later issues add (storage, payment gateway), by name."""

    def made_once(self, key: str, kind: type[T], make: Callable[[], T]) -> T:
        """The process's collaborator kept in `extras` under `key`, made on first use (a
        pool, a client, a batching task: one per process, not one per request)."""
        made = self.extras.get(key)
        if not isinstance(made, kind):
            made = make()
            self.extras[key] = made
        return made

    def made(self, key: str, kind: type[T]) -> T | None:
        """The collaborator under `key` if one was made, to close it at shutdown."""
        made = self.extras.get(key)
        return made if isinstance(made, kind) else None


AUTOCOMMIT_SESSIONS = "autocommit_sessions"


def autocommit_sessions(resources: Resources) -> async_sessionmaker[AsyncSession]:
    """Sessions in autocommit: each statement commits on its own, with no BEGIN or COMMIT
    round trip. For the hot paths that run one statement alone (the token check on every
    request, an idempotency claim that must be visible at once). Without an engine (tests
    hand in a sessionmaker bound to their transaction), the app's sessions."""
    engine = resources.engine
    if engine is None:
        return resources.sessionmaker
    made: async_sessionmaker[AsyncSession] = resources.made_once(
        AUTOCOMMIT_SESSIONS,
        async_sessionmaker,
        lambda: async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        ),
    )
    return made


def get_resources(state: State) -> Resources:
    resources: Resources = state["resources"]
    return resources


async def provide_resources(state: State) -> Resources:
    return get_resources(state)


@asynccontextmanager
async def request_unit_of_work(resources: Resources) -> AsyncIterator[UnitOfWork]:
    """One unit of work per request: committed once after the handler returns, rolled back
    if it raised. Jobs go out only after the commit."""
    uow = UnitOfWork(resources.sessionmaker, resources.job_sender)
    try:
        yield uow
    except BaseException:
        await uow.rollback()
        raise
    else:
        await uow.commit()
    finally:
        await uow.close()


async def provide_unit_of_work(state: State) -> AsyncGenerator[UnitOfWork, None]:
    async with request_unit_of_work(get_resources(state)) as uow:
        yield uow
