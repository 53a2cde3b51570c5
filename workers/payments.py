"""Payment tasks: deliver settlement events from the outbox to the impact ledger. The body
lives in `marketplace.payments.outbox`; this is thin."""

from __future__ import annotations

import functools
import uuid

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from marketplace.jobs import JobName
from marketplace.payments.outbox import DELIVERY_BATCH, OutboxService
from workers import runtime
from workers.app import app
from workers.runtime import WorkerContext

TRANSIENT = (DBAPIError, PoolTimeoutError, OSError)  # OSError: connect refused
MAX_BATCHES = 20


async def deliver_outbox(ctx: WorkerContext, event_ids: list[str] | None = None) -> int:
    """The events named (a job queued after a settlement's commit), or every undelivered
    one, oldest first, batch by batch (the beat sweep). Idempotent: a delivered event is
    never picked again, and impact records each event id once."""
    ids = [uuid.UUID(event_id) for event_id in event_ids] if event_ids is not None else None
    delivered = 0
    for _ in range(MAX_BATCHES):
        async with ctx.unit_of_work() as uow:
            report = await OutboxService(uow, ctx.settings, ctx.clock).deliver(ids)
            await uow.commit()
        delivered += report.delivered
        # Events impact keeps refusing sort last (by attempts) and end the sweep.
        if ids is not None or report.delivered == 0 or report.delivered < DELIVERY_BATCH:
            break
    return delivered


@app.task(
    name=JobName.DELIVER_OUTBOX.value,
    autoretry_for=TRANSIENT,
    max_retries=5,
    retry_backoff=True,
)
def deliver_outbox_task(event_ids: list[str] | None = None) -> int:
    return runtime.run(functools.partial(deliver_outbox, event_ids=event_ids))
