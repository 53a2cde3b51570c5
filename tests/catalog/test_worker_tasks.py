"""The catalog's Celery task bodies, run as a worker runs them (its context, its store)."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.catalog.certificates import vietnam_today
from marketplace.catalog.models import ImageStatus, ProductImage, SellerNotice
from marketplace.db import utcnow
from marketplace.settings import Settings
from tests.catalog.factories import create_certification, create_image, create_product
from tests.media.sample_images import jpeg_with_gps
from tests.support.jobs import RecordingSender
from workers.catalog import check_image, process_storage, sweep_unchecked, warn_expiring
from workers.runtime import WorkerContext


def context(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> WorkerContext:
    return WorkerContext(
        settings=settings, sessionmaker=sessionmaker, redis=redis, job_sender=RecordingSender()
    )


async def test_the_image_task_checks_an_upload_in_the_workers_own_store(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    session: AsyncSession,
) -> None:
    product = await create_product(session)
    image = await create_image(session, product, status=ImageStatus.UPLOADED)
    await session.commit()
    process_storage(settings).put_bytes(
        image.object_key, jpeg_with_gps(640, 480), content_type="image/jpeg"
    )

    status = await check_image(context(settings, sessionmaker, redis), str(image.id))
    again = await check_image(context(settings, sessionmaker, redis), str(image.id))

    assert (status, again) == ("ready", "ready")
    stored = await session.scalar(
        select(ProductImage.status)
        .where(ProductImage.id == image.id)
        .execution_options(populate_existing=True)
    )
    assert stored == ImageStatus.READY


async def test_the_warning_task_warns_every_due_certificate(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    session: AsyncSession,
) -> None:
    product = await create_product(session)
    today = vietnam_today(utcnow())
    for days in (3, 15):
        await create_certification(session, product=product, valid_to=today + timedelta(days))
    await session.commit()

    warned = await warn_expiring(context(settings, sessionmaker, redis))

    assert warned == 2
    notices = (await session.scalars(select(SellerNotice))).all()
    assert {n.household_id for n in notices} == {product.household_id}


async def test_the_sweep_task_queues_nothing_when_no_check_is_lost(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis
) -> None:
    assert await sweep_unchecked(context(settings, sessionmaker, redis)) == 0
