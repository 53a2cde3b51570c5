"""Order tasks: give back the stock of holds that ran out. The body lives in
`marketplace.orders.service`; this is thin."""

from __future__ import annotations

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from marketplace.jobs import JobName
from marketplace.orders.service import OrderService
from workers import runtime
from workers.app import app
from workers.runtime import WorkerContext

log = structlog.get_logger(__name__)

TRANSIENT = (DBAPIError, PoolTimeoutError, RedisConnectionError, OSError)  # connect refused
"""Worth retrying: the database or Redis was unreachable for a moment."""
MAX_BATCHES = 50
"""A sweep stops after this many batches; the next one (30 s later) carries on."""


async def release_expired_holds(ctx: WorkerContext) -> int:
    """Batch after batch, each its own transaction, until nothing has expired. Two sweeps
    at once take disjoint orders (SKIP LOCKED), so running twice is harmless."""
    released = 0
    for _ in range(MAX_BATCHES):
        async with ctx.unit_of_work() as uow:
            service = OrderService(uow, ctx.settings, ctx.redis, ctx.clock)
            now = ctx.clock()
            batch = await service.release_expired_holds(now)
            await service.purge_idempotency_records(now)
            await uow.commit()
        released += batch
        if batch == 0:
            break
    if released:
        log.info("expired_holds_swept", released=released)
    return released


@app.task(
    name=JobName.RELEASE_EXPIRED_HOLDS.value,
    autoretry_for=TRANSIENT,
    max_retries=5,
    retry_backoff=True,
)
def release_expired_holds_task() -> int:
    return runtime.run(release_expired_holds)
