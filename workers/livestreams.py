"""Livestream tasks: remind followers of sessions about to start. The body lives in
`marketplace.livestreams.followers`; this is thin."""

from __future__ import annotations

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from marketplace.jobs import JobName
from marketplace.livestreams.followers import FollowerService
from workers import runtime
from workers.app import app
from workers.runtime import WorkerContext

log = structlog.get_logger(__name__)


async def send_session_reminders(ctx: WorkerContext) -> int:
    """One transaction: the reminders recorded are the reminders sent. Safe to run twice at
    once (each reminder is recorded, hence sent, by exactly one run)."""
    async with ctx.unit_of_work() as uow:
        sent = await FollowerService(uow, ctx.clock).send_due_reminders()
        await uow.commit()
    return len(sent)


@app.task(
    name=JobName.SEND_SESSION_REMINDERS.value,
    autoretry_for=(DBAPIError, PoolTimeoutError, OSError),  # OSError: connect refused
    max_retries=3,
    retry_backoff=True,
)
def send_session_reminders_task() -> int:
    return runtime.run(send_session_reminders)
