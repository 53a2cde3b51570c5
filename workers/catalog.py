"""Catalog tasks: check an uploaded photo, warn sellers of expiring certificates, and re-queue
photo checks a lost job left undone. Bodies live in `marketplace.catalog`; these are thin."""

from __future__ import annotations

import functools
import uuid

import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from marketplace.catalog.media import ImageService, process_image_job
from marketplace.catalog.service import WARN_BATCH, CatalogService
from marketplace.catalog.storage import build_storage
from marketplace.jobs import JobName
from marketplace.settings import Settings
from media.storage import ObjectStorage, StorageUnavailable
from workers import runtime
from workers.app import app
from workers.runtime import WorkerContext

log = structlog.get_logger(__name__)

TRANSIENT = (StorageUnavailable, DBAPIError, PoolTimeoutError)
"""Worth retrying: the store or the database was unreachable for a moment."""


@functools.cache
def process_storage(settings: Settings) -> ObjectStorage:
    """One client (and connection pool) per worker process."""
    return build_storage(settings)


async def check_image(ctx: WorkerContext, image_id: str) -> str:
    async with ctx.unit_of_work() as uow:
        outcome = await process_image_job(
            uow, process_storage(ctx.settings), ctx.settings, uuid.UUID(image_id), ctx.clock
        )
    log.info("image_checked", image_id=image_id, status=outcome.status, reason=outcome.reason)
    return outcome.status


async def warn_expiring(ctx: WorkerContext) -> int:
    """Batch after batch, each its own transaction, until nothing is due."""
    total = 0
    while True:
        async with ctx.unit_of_work() as uow:
            warned = await CatalogService(uow, ctx.settings, ctx.clock).warn_expiring_certificates()
            await uow.commit()
        total += warned
        if warned < WARN_BATCH:
            return total


async def sweep_unchecked(ctx: WorkerContext) -> int:
    async with ctx.unit_of_work() as uow:
        service = ImageService(uow, process_storage(ctx.settings), ctx.settings, ctx.clock)
        queued = await service.sweep_stuck(ctx.clock())
        await uow.commit()
    return queued


@app.task(
    name=JobName.PROCESS_IMAGE.value,
    autoretry_for=TRANSIENT,
    max_retries=5,
    retry_backoff=True,
)
def process_image(image_id: str) -> None:
    runtime.run(functools.partial(check_image, image_id=image_id))


@app.task(
    name=JobName.WARN_EXPIRING_CERTIFICATES.value,
    autoretry_for=TRANSIENT,
    max_retries=3,
    retry_backoff=True,
)
def warn_expiring_certificates() -> None:
    runtime.run(warn_expiring)


@app.task(name=JobName.SWEEP_UNCHECKED_IMAGES.value, autoretry_for=TRANSIENT, max_retries=2)
def sweep_unchecked_images() -> None:
    runtime.run(sweep_unchecked)
