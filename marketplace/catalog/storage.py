"""The object store the catalog writes photos to, and the public address of this API.

Built once per process from settings (`create_app` puts it in `Resources.extras["storage"]`,
next to the public pages' cache; workers build their own); tests hand in a store of their own
through the same extras.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from marketplace.catalog.page_cache import PageCache
from marketplace.errors import ServiceUnavailable
from marketplace.resources import Resources
from marketplace.settings import Settings
from media.storage import FilesystemStorage, ObjectStorage, create_storage

SIGNING_LABEL = b"marketplace/media-presign/v1"
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - mapped away, never bound


def media_signing_key(settings: Settings) -> bytes:
    """A key of its own for filesystem media URLs, derived from the app secret with a fixed
    label: a leaked media URL tells nothing about tokens or other signatures."""
    secret = settings.security.secret_key.encode()
    return hmac.new(secret, SIGNING_LABEL, hashlib.sha256).digest()


def public_base_url(settings: Settings) -> str:
    """Where people reach this API: the address it listens on (the embedded mode's one
    machine). Trace QR codes and filesystem media URLs are absolute URLs under it."""
    host = "127.0.0.1" if settings.host in _WILDCARD_HOSTS else settings.host
    return f"http://{host}:{settings.port}"


def build_storage(settings: Settings) -> ObjectStorage:
    storage_settings = settings.storage
    storage = create_storage(
        storage_settings.backend,
        endpoint=storage_settings.endpoint,
        access_key=storage_settings.access_key,
        secret_key=storage_settings.secret_key,
        bucket=storage_settings.bucket,
        secure=storage_settings.secure,
        region=storage_settings.region,
        public_endpoint=storage_settings.public_endpoint or None,
        root=storage_settings.root,
        base_url=public_base_url(settings),
        signing_key=media_signing_key(settings),
    )
    if isinstance(storage, FilesystemStorage):
        # Local directories only; a MinIO bucket is the deployment's to create.
        storage.ensure_bucket()
    return storage


def catalog_extras(extras: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """`Resources.extras` with the catalog's collaborators the caller did not bring: the
    configured object store, and the public pages' cache (`page_cache: None` turns it off,
    as tests that read their own writes at once do)."""
    out = dict(extras)
    if out.get("storage") is None:
        out["storage"] = build_storage(settings)
    if "page_cache" not in out:
        out["page_cache"] = PageCache()
    return out


def page_cache_of(resources: Resources) -> PageCache | None:
    cache = resources.extras.get("page_cache")
    return cache if isinstance(cache, PageCache) else None


def storage_of(resources: Resources) -> ObjectStorage:
    storage: ObjectStorage | None = resources.extras.get("storage")
    if storage is None:
        raise ServiceUnavailable("object storage is not configured")
    return storage
