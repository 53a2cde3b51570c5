"""Impact tasks: the nightly reconciliation, officials' exports and the aggregate rebuild
after an income share changes. Bodies live in `marketplace.impact`; these are thin."""

from __future__ import annotations

import functools
import uuid

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from marketplace.catalog.storage import build_storage
from marketplace.impact.exports import build_export
from marketplace.impact.reconciliation import reconcile_attribution
from marketplace.impact.service import ImpactService
from marketplace.jobs import JobName
from marketplace.settings import Settings
from media.storage import ObjectStorage, StorageUnavailable
from workers import runtime
from workers.app import app
from workers.runtime import WorkerContext

log = structlog.get_logger(__name__)

TRANSIENT = (StorageUnavailable, DBAPIError, PoolTimeoutError, OSError)  # OSError: connect refused


@functools.cache
def process_storage(settings: Settings) -> ObjectStorage:
    return build_storage(settings)


async def reconcile(ctx: WorkerContext) -> int:
    """Number of orders whose ledgers disagree (each one also logged and counted)."""
    async with ctx.unit_of_work() as uow:
        report = await reconcile_attribution(uow, ctx.settings, ctx.redis)
    return len(report.mismatches)


async def export(ctx: WorkerContext, export_id: str) -> str:
    return await build_export(
        ctx.unit_of_work, process_storage(ctx.settings), ctx.clock, uuid.UUID(export_id)
    )


async def rebuild(ctx: WorkerContext) -> int:
    async with ctx.unit_of_work() as uow:
        done = await ImpactService(uow, ctx.settings).rebuild_aggregates()
        await uow.commit()
    return done


@app.task(name=JobName.RECONCILE_ATTRIBUTION.value, autoretry_for=TRANSIENT, max_retries=3)
def reconcile_attribution_task() -> None:
    runtime.run(reconcile)


@app.task(
    name=JobName.BUILD_EXPORT.value,
    autoretry_for=TRANSIENT,
    max_retries=5,
    retry_backoff=True,
)
def build_export_task(export_id: str) -> None:
    runtime.run(functools.partial(export, export_id=export_id))


@app.task(name=JobName.REBUILD_IMPACT_AGGREGATES.value, autoretry_for=TRANSIENT, max_retries=3)
def rebuild_aggregates_task() -> None:
    runtime.run(rebuild)
