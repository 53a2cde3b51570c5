"""Group commit: the orders of a flash sale share durable commits, and each is answered only
after the commit that made it durable.

One queue per API process. A request for a one-line order of a pinned item puts a ticket on
the queue and waits; a single task takes every ticket waiting (up to `MAX_BATCH`), places
them in one transaction (`Placement.place_batch`: one lock of the item's row for all of
them, one INSERT for all the orders) and commits once; then every request gets its answer.
While one batch commits, the next gathers, so batches follow the load by themselves: an
order alone is committed at once (there is no timer to wait for), a flood shares commits.

A crash before the commit loses no acknowledged order (none was answered) and leaves no
claim behind (the claims are in the same transaction), so the client's retry with the same
Idempotency-Key is placed afresh. A failed batch is retried when the failure was a conflict
between transactions (deadlock, serialization, a payment code drawn twice); otherwise each
of its requests gets the error, with nothing of the batch written.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Final

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.batching import WaitingBatches
from marketplace.db import create_engine, create_sessionmaker
from marketplace.orders.placement import StoredResponse, Ticket
from marketplace.resources import Resources
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

MAX_BATCH: Final = 512
"""Bounds one transaction's work (and the latency of its last answer), not its wait."""
ATTEMPTS: Final = 3
RETRIED_SQLSTATES: Final = frozenset({"40P01", "40001", "23505"})
"""Deadlock, serialization failure, unique violation (a payment code drawn twice)."""
EXTRAS_KEY: Final = "orders_group_commit"

_Waiting = tuple[Ticket, "asyncio.Future[StoredResponse]"]


class GroupCommit(WaitingBatches[Ticket, StoredResponse]):
    def __init__(self, resources: Resources, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__(max_batch=max_batch, name="orders-group-commit")
        self._resources = resources
        self._engine: AsyncEngine | None = None
        self._sessions = resources.sessionmaker
        self.batches = 0
        """Transactions committed: how many orders shared one shows in tests and benches."""

    async def close(self) -> None:
        await super().close()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    def _sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        """A connection of its own: a batch must never queue for the pool behind the very
        requests it is about to answer. (Tests hand in a transaction-bound sessionmaker
        and no engine: then the app's sessions.)"""
        resources = self._resources
        if resources.engine is None:
            return resources.sessionmaker
        if self._engine is None:
            own = replace(resources.settings.database, pool_size=1, max_overflow=1)
            # Pinged before each batch (one round trip shared by the whole batch): between
            # sales its connection sits idle, and after a database restart the first batch
            # would otherwise fail on it.
            self._engine = create_engine(own, pre_ping=True)
            self._sessions = create_sessionmaker(self._engine)
        return self._sessions

    async def handle(self, batch: list[_Waiting]) -> None:
        # A request that gave up (its client went away) is placed all the same: its answer
        # is kept for the retry with the same key.
        tickets = [ticket for ticket, _ in batch]
        for attempt in range(1, ATTEMPTS + 1):
            try:
                answers = await self._place(tickets)
                break
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
                if sqlstate in RETRIED_SQLSTATES and attempt < ATTEMPTS:
                    log.info("order_batch_retried", sqlstate=sqlstate, size=len(batch))
                    continue
                _fail(batch, exc)
                return
            except Exception as exc:
                _fail(batch, exc)
                return
        self.batches += 1
        for (ticket, future), answer in zip(batch, answers, strict=True):
            if answer is None:
                # Its key was claimed by another ticket of this batch: now it replays.
                self.resubmit(ticket, future)
            elif not future.done():
                future.set_result(answer)

    async def _place(self, tickets: list[Ticket]) -> list[StoredResponse | None]:
        from marketplace.orders.service import OrderService  # noqa: PLC0415 - service imports us

        resources = self._resources
        async with UnitOfWork(self._sessionmaker(), resources.job_sender) as uow:
            service = OrderService(uow, resources.settings, resources.redis, resources.clock)
            answers = await service.place_batch(tickets)
            await uow.commit()
        return answers


def _fail(batch: list[_Waiting], exc: Exception) -> None:
    log.warning("order_batch_failed", size=len(batch), error=type(exc).__name__)
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


def group_commit(resources: Resources) -> GroupCommit:
    """The process's group commit, made on first use."""
    return resources.made_once(EXTRAS_KEY, GroupCommit, lambda: GroupCommit(resources))


async def close_group_commit(resources: Resources) -> None:
    made = resources.made(EXTRAS_KEY, GroupCommit)
    if made is not None:
        await made.close()
