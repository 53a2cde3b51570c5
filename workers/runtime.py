"""One event loop, one database engine and one Redis client per worker process.

A socket shared across fork is corrupted by whichever process speaks first, so the prefork
parent holds no connections: the runtime is built in each child (`worker_process_init`, wired
in workers.app), or lazily on first use where nothing forks (solo pool, beat, tests), and it
belongs to the pid that built it. Tasks stay synchronous and hand an async body to `run`, which
drives it on the process's one loop, so pooled connections never cross event loops.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.db import create_engine, create_sessionmaker, utcnow
from marketplace.jobs import CelerySender, JobSender
from marketplace.redis_clients import connect_redis
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What a task body may use; built once per process, shared by every task it runs."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    job_sender: JobSender
    clock: Callable[[], datetime] = utcnow

    def unit_of_work(self) -> UnitOfWork:
        """A fresh unit of work per call: one task run is one transaction, never shared."""
        return UnitOfWork(self.sessionmaker, self.job_sender)


class WorkerRuntime:
    """The loop and connection pools of one process; driven from the thread that built it."""

    def __init__(self, settings: Settings) -> None:
        if not settings.redis.url:
            raise ValueError("redis url is empty: set REDIS_URL or use `marketplace demo`")
        self.pid = os.getpid()
        self._thread = threading.get_ident()
        self.loop = asyncio.new_event_loop()
        self.engine: AsyncEngine = create_engine(settings.database)
        self.redis = connect_redis(settings.redis.url)
        self.context = WorkerContext(
            settings=settings,
            sessionmaker=create_sessionmaker(self.engine),
            redis=self.redis,
            job_sender=CelerySender(settings.redis.url),
        )

    def run(self, coro_fn: Callable[[WorkerContext], Awaitable[T]]) -> T:
        if threading.get_ident() != self._thread:
            # A threads pool would drive one loop from two threads; refuse rather than corrupt.
            raise RuntimeError("the worker runtime serves one thread: use the prefork or solo pool")
        return self.loop.run_until_complete(coro_fn(self.context))

    def close(self) -> None:
        try:
            # Bounded: a broken socket must not keep a stopping worker alive.
            self.loop.run_until_complete(asyncio.wait_for(self._close_connections(), 10))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    def abandon(self) -> None:
        """In a forked child: forget the parent's pool without closing the parent's sockets."""
        self.engine.sync_engine.dispose(close=False)

    async def _close_connections(self) -> None:
        try:
            await self.redis.aclose()
        finally:
            await self.engine.dispose()


@dataclass(slots=True)
class _ProcessSlot:
    runtime: WorkerRuntime | None = None


_slot = _ProcessSlot()


@functools.cache
def process_settings() -> Settings:
    """Settings of this worker or beat process, read from the environment once, at start-up."""
    return Settings.from_env()


def start(settings: Settings | None = None) -> WorkerRuntime:
    """Build this process's runtime (idempotent); one inherited through fork is abandoned."""
    current = _slot.runtime
    if current is not None and current.pid == os.getpid():
        return current
    if current is not None:
        current.abandon()
    _slot.runtime = WorkerRuntime(settings or process_settings())
    return _slot.runtime


def shutdown() -> None:
    current, _slot.runtime = _slot.runtime, None
    if current is None:
        return
    if current.pid == os.getpid():
        current.close()
    else:
        current.abandon()


def run(coro_fn: Callable[[WorkerContext], Awaitable[T]]) -> T:
    """Drive a task body to completion on this process's loop, building the runtime if needed."""
    return start().run(coro_fn)
