"""Product photos end to end, with real image files: against moto's S3 server (the MinIO
path) and against the filesystem store through the API's own /media endpoints.

Nothing unverified is ever served: the raw upload never, and renditions only of READY images.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from PIL import ExifTags, Image
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.app import create_app
from marketplace.catalog.media import (
    ImageService,
    ProcessOutcome,
    original_key,
    process_image_job,
    upload_key,
)
from marketplace.catalog.models import ImageStatus, ProductImage
from marketplace.catalog.storage import media_signing_key
from marketplace.db import utcnow
from marketplace.jobs import JobName
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from media.images import ImageType
from media.storage import FilesystemStorage, MinioStorage, ObjectStorage
from tests.catalog.conftest import BASE_URL, HouseholdSeller
from tests.catalog.factories import create_image, create_product
from tests.media.sample_images import jpeg_with_gps, plain_jpeg, png_declaring, zip_payload
from tests.support.jobs import RecordingSender


def has_gps(data: bytes) -> bool:
    exif = Image.open(io.BytesIO(data)).getexif()
    return bool(exif.get_ifd(ExifTags.IFD.GPSInfo)) or ExifTags.Base.GPSInfo in exif


async def request_slot(
    client: httpx.AsyncClient,
    seller: HouseholdSeller,
    product_id: uuid.UUID,
    data: bytes,
    *,
    content_type: str = "image/jpeg",
    filename: str = "Ảnh vườn bưởi.JPG",
) -> dict[str, Any]:
    response = await client.post(
        f"/api/products/{product_id}/images/upload-slot",
        json={"content_type": content_type, "filename": filename, "size": len(data)},
        headers=seller.farmer.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def confirm(
    client: httpx.AsyncClient, seller: HouseholdSeller, product_id: uuid.UUID, image_id: str
) -> httpx.Response:
    return await client.post(
        f"/api/products/{product_id}/images/{image_id}/confirm", headers=seller.farmer.headers
    )


async def put_to_s3(url: str, data: bytes, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient() as raw:
        response = await raw.put(url, content=data, headers=headers)
    assert response.status_code == 200, response.text


async def check(
    uow: UnitOfWork, storage: ObjectStorage, settings: Settings, image_id: str
) -> ProcessOutcome:
    return await process_image_job(uow, storage, settings, uuid.UUID(image_id), utcnow)


async def uploaded_to_s3(
    s3_client: httpx.AsyncClient,
    seller: HouseholdSeller,
    product_id: uuid.UUID,
    data: bytes,
    **slot_args: Any,
) -> str:
    slot = await request_slot(s3_client, seller, product_id, data, **slot_args)
    await put_to_s3(slot["upload_url"], data, slot["headers"])
    response = await confirm(s3_client, seller, product_id, slot["image_id"])
    assert response.status_code == 202, response.text
    image_id: str = slot["image_id"]
    return image_id


async def served_renditions(client: httpx.AsyncClient, product_id: uuid.UUID) -> list[str]:
    body = (await client.get(f"/api/products/{product_id}")).json()
    return [url for image in body["images"] for url in image["renditions"].values()]


# ---- S3 (moto) -----------------------------------------------------------------------------


async def test_a_phone_photo_becomes_ready_and_its_gps_never_reaches_a_reader(
    *,
    s3_client: httpx.AsyncClient,
    s3_storage: MinioStorage,
    session: AsyncSession,
    uow: UnitOfWork,
    settings: Settings,
    seller: HouseholdSeller,
    job_sender: RecordingSender,
) -> None:
    product = await create_product(session, household=seller.household)
    photo = jpeg_with_gps(1600, 1200)
    assert has_gps(photo)

    slot = await request_slot(s3_client, seller, product.id, photo)
    await put_to_s3(slot["upload_url"], photo, slot["headers"])
    confirmed = await confirm(s3_client, seller, product.id, slot["image_id"])
    not_yet = await served_renditions(s3_client, product.id)
    outcome = await check(uow, s3_storage, settings, slot["image_id"])

    assert confirmed.json()["status"] == "uploaded"
    assert not_yet == []
    assert [(j.name, j.kwargs) for j in job_sender.sent] == [
        (JobName.PROCESS_IMAGE, {"image_id": slot["image_id"]})
    ]
    assert outcome.status == "ready"
    urls = await served_renditions(s3_client, product.id)
    assert sorted(urls) == sorted(
        [f"/api/images/{slot['image_id']}/320", f"/api/images/{slot['image_id']}/1280"]
    )
    redirect = await s3_client.get(f"/api/images/{slot['image_id']}/1280")
    assert redirect.status_code == 307
    assert redirect.headers["cache-control"] == "public, max-age=600"
    async with httpx.AsyncClient() as raw:
        rendition = await raw.get(redirect.headers["location"])
    assert rendition.status_code == 200
    served = Image.open(io.BytesIO(rendition.content))
    assert (served.format, served.size) == ("WEBP", (1280, 960))
    assert not has_gps(rendition.content)
    assert b"GPS" not in rendition.content
    assert b"Exif" not in rendition.content
    clean = s3_storage.get_bytes(
        original_key(uuid.UUID(slot["image_id"]), ImageType.JPEG), max_bytes=10**7
    )
    assert not has_gps(clean)
    assert s3_storage.stat(upload_key(product.id, uuid.UUID(slot["image_id"]))) is None


@pytest.mark.parametrize(
    ("data", "content_type", "filename", "reason"),
    [
        pytest.param(
            png_declaring(20_000, 20_000),
            "image/png",
            "bom.png",
            "too_many_pixels",
            id="decompression-bomb",
        ),
        pytest.param(
            b"Day khong phai anh, chi la chu.\n" * 20,
            "image/jpeg",
            "anh.jpg",
            "not_an_image",
            id="text-named-jpg",
        ),
        pytest.param(
            plain_jpeg() + zip_payload(),
            "image/jpeg",
            "anh.jpg",
            "trailing_data",
            id="jpeg-zip-polyglot",
        ),
        pytest.param(plain_jpeg(), "image/png", "anh.png", "type_mismatch", id="jpeg-declared-png"),
    ],
)
async def test_a_file_that_is_not_a_clean_photo_is_rejected_and_nothing_is_served(
    *,
    s3_client: httpx.AsyncClient,
    s3_storage: MinioStorage,
    session: AsyncSession,
    uow: UnitOfWork,
    settings: Settings,
    seller: HouseholdSeller,
    data: bytes,
    content_type: str,
    filename: str,
    reason: str,
) -> None:
    product = await create_product(session, household=seller.household)

    image_id = await uploaded_to_s3(
        s3_client, seller, product.id, data, content_type=content_type, filename=filename
    )
    outcome = await check(uow, s3_storage, settings, image_id)

    assert (outcome.status, outcome.reason) == ("rejected", reason)
    assert await served_renditions(s3_client, product.id) == []
    assert (await s3_client.get(f"/api/images/{image_id}/320")).status_code == 404
    owner = await s3_client.get(f"/api/seller/products/{product.id}", headers=seller.farmer.headers)
    [shown] = owner.json()["images"]
    assert (shown["status"], shown["reject_reason"], shown["renditions"]) == (
        "rejected",
        reason,
        {},
    )
    assert s3_storage.stat(upload_key(product.id, uuid.UUID(image_id))) is None


async def test_checking_a_ready_image_again_changes_nothing(
    *,
    s3_client: httpx.AsyncClient,
    s3_storage: MinioStorage,
    session: AsyncSession,
    uow: UnitOfWork,
    settings: Settings,
    seller: HouseholdSeller,
) -> None:
    product = await create_product(session, household=seller.household)
    image_id = await uploaded_to_s3(s3_client, seller, product.id, plain_jpeg(800, 600))
    await check(uow, s3_storage, settings, image_id)
    row = await session.get(ProductImage, uuid.UUID(image_id))
    assert row is not None
    before = (row.status, dict(row.renditions), row.updated_at)

    again = await check(uow, s3_storage, settings, image_id)

    await session.refresh(row)
    assert again.status == "ready"
    assert (row.status, dict(row.renditions), row.updated_at) == before


async def test_an_upload_that_is_confirmed_but_not_checked_is_not_served(
    s3_client: httpx.AsyncClient, session: AsyncSession, seller: HouseholdSeller
) -> None:
    product = await create_product(session, household=seller.household)
    confirmed = await uploaded_to_s3(s3_client, seller, product.id, plain_jpeg())
    pending = await request_slot(s3_client, seller, product.id, plain_jpeg())

    assert await served_renditions(s3_client, product.id) == []
    for image_id in (confirmed, pending["image_id"]):
        assert (await s3_client.get(f"/api/images/{image_id}/320")).status_code == 404


async def test_confirming_before_uploading_is_a_conflict_and_queues_nothing(
    s3_client: httpx.AsyncClient,
    session: AsyncSession,
    seller: HouseholdSeller,
    job_sender: RecordingSender,
) -> None:
    product = await create_product(session, household=seller.household)
    slot = await request_slot(s3_client, seller, product.id, plain_jpeg())

    response = await confirm(s3_client, seller, product.id, slot["image_id"])

    assert (response.status_code, response.json()["code"]) == (409, "upload_missing")
    assert job_sender.sent == []


async def test_confirming_twice_queues_the_check_once(
    s3_client: httpx.AsyncClient,
    session: AsyncSession,
    seller: HouseholdSeller,
    job_sender: RecordingSender,
) -> None:
    product = await create_product(session, household=seller.household)
    image_id = await uploaded_to_s3(s3_client, seller, product.id, plain_jpeg())

    again = await confirm(s3_client, seller, product.id, image_id)

    assert again.status_code == 202
    assert len(job_sender.sent) == 1


async def test_the_slot_keeps_a_sanitised_file_name_and_a_key_of_ours(
    s3_client: httpx.AsyncClient, session: AsyncSession, seller: HouseholdSeller
) -> None:
    product = await create_product(session, household=seller.household)

    slot = await request_slot(
        s3_client, seller, product.id, plain_jpeg(), filename="../../etc/Ảnh bưởi đỏ.JPG"
    )

    row = await session.get(ProductImage, uuid.UUID(slot["image_id"]))
    assert row is not None
    assert row.original_filename == "Anh_buoi_do.JPG"
    assert row.object_key == f"uploads/{product.id}/{slot['image_id']}"
    assert urlsplit(slot["upload_url"]).path.endswith(row.object_key)
    assert slot["method"] == "PUT"
    assert slot["max_bytes"] == 10 * 1024 * 1024


async def test_a_lost_check_is_queued_again_by_the_sweeper(
    session: AsyncSession, uow: UnitOfWork, settings: Settings, fs_storage: FilesystemStorage
) -> None:
    product = await create_product(session)
    stuck = await create_image(session, product, status=ImageStatus.UPLOADED)
    fresh = await create_image(session, product, status=ImageStatus.UPLOADED, position=1)
    await session.execute(
        update(ProductImage)
        .where(ProductImage.id == stuck.id)
        .values(updated_at=utcnow() - timedelta(minutes=30))
    )

    queued = await ImageService(uow, fs_storage, settings, utcnow).sweep_stuck(utcnow())

    assert queued == 1
    assert [job.kwargs for job in uow.pending_jobs] == [{"image_id": str(stuck.id)}]
    assert fresh.id != stuck.id


# ---- Filesystem store (embedded mode) -------------------------------------------------------


async def test_the_embedded_store_takes_the_upload_and_serves_only_the_clean_rendition(
    *,
    client: httpx.AsyncClient,
    fs_storage: FilesystemStorage,
    session: AsyncSession,
    uow: UnitOfWork,
    settings: Settings,
    seller: HouseholdSeller,
) -> None:
    product = await create_product(session, household=seller.household)
    photo = jpeg_with_gps(1200, 1600)

    slot = await request_slot(client, seller, product.id, photo)
    put = await client.put(slot["upload_url"], content=photo, headers=slot["headers"])
    confirmed = await confirm(client, seller, product.id, slot["image_id"])
    outcome = await check(uow, fs_storage, settings, slot["image_id"])
    redirect = await client.get(f"/api/images/{slot['image_id']}/320")
    rendition = await client.get(redirect.headers["location"])

    assert slot["upload_url"].startswith(f"{BASE_URL}/media/uploads/")
    assert put.status_code == 200, put.text
    assert confirmed.status_code == 202
    assert outcome.status == "ready"
    assert redirect.status_code == 307
    assert urlsplit(redirect.headers["location"]).path.startswith("/media/renditions/")
    assert rendition.status_code == 200
    assert rendition.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(rendition.content)).size == (320, 427)
    assert not has_gps(rendition.content)
    assert fs_storage.stat(upload_key(product.id, uuid.UUID(slot["image_id"]))) is None


async def test_the_embedded_store_never_serves_an_upload(
    client: httpx.AsyncClient,
    fs_storage: FilesystemStorage,
    session: AsyncSession,
    seller: HouseholdSeller,
) -> None:
    product = await create_product(session, household=seller.household)
    slot = await request_slot(client, seller, product.id, plain_jpeg())
    await client.put(slot["upload_url"], content=plain_jpeg())
    key = upload_key(product.id, uuid.UUID(slot["image_id"]))

    signed_for_reading = fs_storage.presigned_get_url(key, expires=timedelta(minutes=5))
    response = await client.get(signed_for_reading)

    assert fs_storage.stat(key) is not None
    assert (response.status_code, response.json()["code"]) == (403, "media_url_rejected")


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(pair.split("=", 1) for pair in parts.query.split("&"))
    query.update(changes)
    return f"{parts.scheme}://{parts.netloc}{parts.path}?" + "&".join(
        f"{k}={v}" for k, v in query.items()
    )


async def test_the_embedded_store_refuses_uploads_with_a_bad_signature(
    client: httpx.AsyncClient,
    fs_storage: FilesystemStorage,
    settings: Settings,
    session: AsyncSession,
    seller: HouseholdSeller,
) -> None:
    product = await create_product(session, household=seller.household)
    slot = await request_slot(client, seller, product.id, plain_jpeg())
    url = slot["upload_url"]
    yesterday = FilesystemStorage(
        fs_storage.root,
        BASE_URL,
        media_signing_key(settings),
        clock=lambda: utcnow() - timedelta(days=1),
    )
    key = upload_key(product.id, uuid.UUID(slot["image_id"]))

    tampered = await client.put(_with_query(url, sig="0" * 64), content=b"x")
    other_expiry = await client.put(_with_query(url, expires="9999999999"), content=b"x")
    expired = await client.put(
        yesterday.presigned_put_url(key, content_type="image/jpeg", expires=timedelta(hours=1)),
        content=b"x",
    )
    get_signature = await client.put(
        fs_storage.presigned_get_url(key, expires=timedelta(hours=1)), content=b"x"
    )
    rendition_key = fs_storage.presigned_put_url(
        f"renditions/{slot['image_id']}/320.webp",
        content_type="image/webp",
        expires=timedelta(hours=1),
    )
    into_renditions = await client.put(rendition_key, content=b"x")

    for response in (tampered, other_expiry, expired, get_signature, into_renditions):
        assert (response.status_code, response.json()["code"]) == (403, "media_url_rejected")
    assert fs_storage.stat(key) is None
    assert fs_storage.stat(f"renditions/{slot['image_id']}/320.webp") is None


async def test_the_embedded_store_stops_reading_an_upload_past_the_cap(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    tmp_path: Path,
) -> None:
    small = settings.with_overrides(storage=replace(settings.storage, max_upload_bytes=4096))
    storage = FilesystemStorage(tmp_path / "small", BASE_URL, media_signing_key(small))
    storage.ensure_bucket()
    app = create_app(
        small,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=RecordingSender(),
        skip_logging_setup=True,
        extras={"storage": storage},
    )
    url = storage.presigned_put_url(
        "uploads/p/i", content_type="image/jpeg", expires=timedelta(minutes=5)
    )

    async def body() -> Any:
        for _ in range(10):
            yield b"\xff" * 1024

    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as c,
    ):
        declared = await c.put(url, content=b"\xff" * 5000)
        streamed = await c.put(url, content=body())

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["errors"] == [{"field": "body", "message": "at most 4096 bytes"}]
    assert storage.stat("uploads/p/i") is None


async def test_rejected_uploads_on_the_embedded_store_are_deleted(
    *,
    client: httpx.AsyncClient,
    fs_storage: FilesystemStorage,
    session: AsyncSession,
    uow: UnitOfWork,
    settings: Settings,
    seller: HouseholdSeller,
) -> None:
    product = await create_product(session, household=seller.household)
    text = b"<html>not a photo</html>"
    slot = await request_slot(client, seller, product.id, text, filename="anh.jpg")
    await client.put(slot["upload_url"], content=text)
    await confirm(client, seller, product.id, slot["image_id"])

    outcome = await check(uow, fs_storage, settings, slot["image_id"])

    assert (outcome.status, outcome.reason) == ("rejected", "not_an_image")
    assert fs_storage.stat(upload_key(product.id, uuid.UUID(slot["image_id"]))) is None
    status = await session.scalar(
        select(ProductImage.status).where(ProductImage.id == uuid.UUID(slot["image_id"]))
    )
    assert status == ImageStatus.REJECTED
