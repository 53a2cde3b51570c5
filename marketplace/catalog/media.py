"""Product photos: upload slots, confirmation, the check a worker runs, and serving.

The path of a photo:

1. `POST /api/products/{id}/images/upload-slot` makes a PENDING image row and a presigned PUT
   URL for a key we generate (`uploads/<product>/<image>`); the client's file name is kept
   only as a sanitised label.
2. The client PUTs the bytes straight to the object store (MinIO, or `PUT /media/...` of this
   API in the embedded mode).
3. `POST .../confirm` marks the image UPLOADED and queues `catalog.process_image` (sent after
   the commit).
4. The job reads the object (never more than the upload cap), judges it by its content
   (`media.images.inspect_image`), strips its metadata (a farmer's GPS), writes WebP
   renditions and marks the image READY, or REJECTED with the reason. The raw upload is
   deleted after the commit either way: it is never served and may carry a home's GPS.
5. Only renditions of READY images are ever signed for reading, through a stable URL of this
   API (`/api/images/<image>/<width>`) that redirects to a short-lived signed URL. Responses
   that list images therefore stay byte-identical between requests, which their ETags need.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
import structlog

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.catalog.access import ProductAccess
from marketplace.catalog.errors import (
    ImageNotFound,
    InvalidField,
    TooManyImages,
    UploadMissing,
    UploadTooLarge,
)
from marketplace.catalog.models import ImageStatus, ProductImage
from marketplace.catalog.repository import ImageRepository
from marketplace.catalog.schemas import ImageOwnerRead, UploadSlotCreate, UploadSlotRead
from marketplace.jobs import JobName
from marketplace.resources import Clock
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from media.images import (
    ImageRejected,
    ImageType,
    inspect_image,
    make_renditions,
    safe_filename,
    strip_metadata,
)
from media.storage import ObjectNotFound, ObjectStorage, ObjectTooLarge

log = structlog.get_logger(__name__)

ACCEPTED_CONTENT_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
UPLOAD_URL_LIFETIME = timedelta(minutes=15)
READ_URL_LIFETIME = timedelta(hours=1)
REDIRECT_MAX_AGE_SECONDS = 600
"""How long a client may reuse a redirect to a read URL: well inside its lifetime."""
MAX_IMAGES_PER_PRODUCT = 12
STUCK_AFTER = timedelta(minutes=10)
UPLOADS_PREFIX = "uploads/"
RENDITIONS_PREFIX = "renditions/"
ORIGINALS_PREFIX = "originals/"
MISSING_UPLOAD_REASON = "missing"


def upload_key(product_id: uuid.UUID, image_id: uuid.UUID) -> str:
    return f"{UPLOADS_PREFIX}{product_id}/{image_id}"


def rendition_key(image_id: uuid.UUID, width: int) -> str:
    return f"{RENDITIONS_PREFIX}{image_id}/{width}.webp"


def original_key(image_id: uuid.UUID, image_type: ImageType) -> str:
    return f"{ORIGINALS_PREFIX}{image_id}{image_type.extension}"


def rendition_urls(image: ProductImage) -> dict[str, str]:
    """Stable URLs of a READY image's renditions; nothing for any other image."""
    if image.status != ImageStatus.READY:
        return {}
    return {width: f"/api/images/{image.id}/{width}" for width in sorted(image.renditions, key=int)}


def image_owner_read(image: ProductImage) -> ImageOwnerRead:
    return ImageOwnerRead(
        id=image.id,
        status=ImageStatus(image.status),
        reject_reason=image.reject_reason,
        original_filename=image.original_filename,
        width=image.width,
        height=image.height,
        renditions=rendition_urls(image),
        created_at=image.created_at,
    )


async def in_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Storage calls and image decoding block: keep them off the event loop."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    image_id: uuid.UUID
    status: str
    reason: str | None = None
    delete_after_commit: tuple[str, ...] = ()


class ImageService:
    def __init__(
        self,
        uow: UnitOfWork,
        storage: ObjectStorage,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._images = ImageRepository(uow.session)
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._access = ProductAccess(uow, settings, clock)

    @property
    def max_upload_bytes(self) -> int:
        return self._settings.storage.max_upload_bytes

    async def upload_slot(
        self, user: AuthenticatedUser, product_id: uuid.UUID, data: UploadSlotCreate
    ) -> UploadSlotRead:
        content_type = data.content_type.split(";", 1)[0].strip().lower()
        if content_type not in ACCEPTED_CONTENT_TYPES:
            raise InvalidField(
                "content_type", "must be one of " + ", ".join(sorted(ACCEPTED_CONTENT_TYPES))
            )
        if data.size > self.max_upload_bytes:
            raise UploadTooLarge("size", self.max_upload_bytes)
        editable = await self._access.product_for_edit(user, product_id)
        product = editable.product
        kept = await self._images.count_kept(product.id)
        if kept >= MAX_IMAGES_PER_PRODUCT:
            raise TooManyImages(f"a product may have at most {MAX_IMAGES_PER_PRODUCT} images")
        image_id = uuid.uuid4()
        key = upload_key(product.id, image_id)
        image = await self._images.add(
            ProductImage(
                id=image_id,
                product_id=product.id,
                object_key=key,
                status=ImageStatus.PENDING.value,
                declared_content_type=content_type,
                original_filename=safe_filename(data.filename, max_length=120),
                size_bytes=data.size,
                position=kept,
            )
        )
        url = self._storage.presigned_put_url(
            key, content_type=content_type, expires=UPLOAD_URL_LIFETIME
        )
        await self._access.record(editable.acting, "catalog.image_upload_slot", image.id)
        return UploadSlotRead(
            image_id=image.id,
            upload_url=url,
            method="PUT",
            headers={"Content-Type": content_type},
            expires_at=self._clock() + UPLOAD_URL_LIFETIME,
            max_bytes=self.max_upload_bytes,
        )

    async def confirm(
        self, user: AuthenticatedUser, product_id: uuid.UUID, image_id: uuid.UUID
    ) -> ImageOwnerRead:
        """Idempotent: confirming again answers the image as it is and queues nothing."""
        editable = await self._access.product_for_edit(user, product_id)
        image = await self._images.get(editable.product.id, image_id)
        if image is None:
            raise ImageNotFound()
        if image.status == ImageStatus.PENDING:
            if await in_thread(self._storage.stat, image.object_key) is None:
                raise UploadMissing()
            image.mark_uploaded()
            await self._images.flush()
            self._uow.add_job(JobName.PROCESS_IMAGE, {"image_id": str(image.id)})
            await self._access.record(editable.acting, "catalog.image_confirm", image.id)
        return image_owner_read(image)

    async def process(self, image_id: uuid.UUID) -> ProcessOutcome:
        """Check one confirmed upload. Re-running it on a decided image changes nothing; a
        storage outage raises (`StorageUnavailable`) so the job is retried."""
        image = await self._images.lock_for_processing(image_id)
        if image is None:
            return ProcessOutcome(image_id, "skipped")
        if image.status != ImageStatus.UPLOADED:
            return ProcessOutcome(image_id, image.status, image.reject_reason)
        upload = image.object_key
        try:
            data: bytes = await in_thread(
                self._storage.get_bytes, upload, max_bytes=self.max_upload_bytes
            )
        except ObjectNotFound:
            return await self._reject(image, MISSING_UPLOAD_REASON, ())
        except ObjectTooLarge:
            return await self._reject(image, "too_large", (upload,))
        try:
            info = await in_thread(
                inspect_image,
                data,
                declared_content_type=image.declared_content_type,
                max_bytes=self.max_upload_bytes,
            )
            clean: bytes = await in_thread(strip_metadata, data)
            renditions: dict[int, bytes] = await in_thread(make_renditions, clean)
        except ImageRejected as exc:
            log.info("image_rejected", image_id=str(image.id), reason=exc.reason_code.value)
            return await self._reject(image, exc.reason_code.value, (upload,))
        # Objects first, row last: a crash in between leaves an UPLOADED image whose re-run
        # overwrites the same keys.
        await in_thread(
            self._storage.put_bytes,
            original_key(image.id, info.image_type),
            clean,
            content_type=info.content_type,
        )
        keys: dict[str, str] = {}
        for width, rendition in renditions.items():
            key = rendition_key(image.id, width)
            await in_thread(self._storage.put_bytes, key, rendition, content_type="image/webp")
            keys[str(width)] = key
        image.mark_ready(
            width=info.width, height=info.height, size_bytes=info.size_bytes, renditions=keys
        )
        await self._images.flush()
        log.info("image_ready", image_id=str(image.id), width=info.width, height=info.height)
        return ProcessOutcome(image.id, image.status, delete_after_commit=(upload,))

    async def _reject(
        self, image: ProductImage, reason: str, delete: tuple[str, ...]
    ) -> ProcessOutcome:
        image.mark_rejected(reason)
        await self._images.flush()
        return ProcessOutcome(image.id, image.status, reason, delete_after_commit=delete)

    async def rendition_url(self, image_id: uuid.UUID, width: str) -> str:
        """A signed read URL for a READY image's rendition; 404 for anything else."""
        image = await self._images.get_ready(image_id)
        key = image.renditions.get(width) if image is not None else None
        if not isinstance(key, str):
            raise ImageNotFound()
        return self._storage.presigned_get_url(key, expires=READ_URL_LIFETIME)

    async def sweep_stuck(self, now: datetime, limit: int = 100) -> int:
        """Queue the check again for confirmed images left unchecked (a lost job)."""
        ids = await self._images.stuck_uploaded(now - STUCK_AFTER, limit)
        for image_id in ids:
            self._uow.add_job(JobName.PROCESS_IMAGE, {"image_id": str(image_id)})
        return len(ids)


async def process_image_job(
    uow: UnitOfWork,
    storage: ObjectStorage,
    settings: Settings,
    image_id: uuid.UUID,
    clock: Clock,
) -> ProcessOutcome:
    """The body of `catalog.process_image`: check, commit, then drop the raw upload (only
    after the commit, so a failed commit can be re-run on the same bytes)."""
    outcome = await ImageService(uow, storage, settings, clock).process(image_id)
    await uow.commit()
    for key in outcome.delete_after_commit:
        try:
            await in_thread(storage.delete, key)
        except Exception:  # best effort: an orphan upload is never served
            log.warning("upload_not_deleted", key=key, exc_info=True)
    return outcome
