"""Unit of work: one session, one commit, then the jobs queued during the transaction.

Services receive the unit of work, add rows and queue jobs; they never commit. The owner
(the request dependency or a worker task) commits once. Jobs leave only after that commit
succeeded, so a worker never sees an id whose row was rolled back; on rollback they are
dropped. A crash between commit and send is covered by each domain's sweeper task, which
reads the durable row state (`payment.status = pending`), not the queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Self

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.jobs import Job, JobName, JobSender, JsonValue
from marketplace.observability import current_request_id

log = structlog.get_logger(__name__)


class UnitOfWork:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], sender: JobSender) -> None:
        self._sessionmaker = sessionmaker
        self._sender = sender
        self._session: AsyncSession | None = None
        self._jobs: list[Job] = []

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            self._session = self._sessionmaker()
        return self._session

    def add_job(self, name: JobName, kwargs: Mapping[str, JsonValue] | None = None) -> None:
        """Queue a job to be sent after the commit; the current request id rides along."""
        self._jobs.append(
            Job(name=name, kwargs=dict(kwargs or {}), request_id=current_request_id())
        )

    @property
    def pending_jobs(self) -> tuple[Job, ...]:
        return tuple(self._jobs)

    async def commit(self) -> None:
        """Commit, then send queued jobs. A send failure is logged, not raised: the data is
        committed and the sweepers re-drive the work from the rows."""
        if self._session is not None:
            await self._session.commit()
        jobs, self._jobs = self._jobs, []
        if not jobs:
            return
        try:
            await self._sender.send(jobs)
        except Exception:
            log.exception("jobs_not_sent_after_commit", jobs=[j.name.value for j in jobs])

    async def rollback(self) -> None:
        self._jobs.clear()
        if self._session is not None:
            await self._session.rollback()

    async def close(self) -> None:
        self._jobs.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leaving the block without `commit()` rolls back: committing is always explicit."""
        try:
            await self.rollback()
        finally:
            await self.close()
