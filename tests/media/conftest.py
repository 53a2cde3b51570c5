"""Media fixtures: moto's S3 server (reusable, see tests.support.moto_s3) and the stores."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from media.storage import FilesystemStorage, MinioStorage
from tests.support.moto_s3 import MotoS3, moto_s3

__all__ = ["moto_s3"]

SIGNING_KEY = b"media-presign-test-key-0123456789"
BASE_URL = "http://testserver"


def md5_hex(data: bytes) -> str:
    """The etag both stores report for a single-part object."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class FrozenClock:
    """A clock the test moves by hand, so URL expiry is decided by the test, not by timing."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))


@pytest.fixture
def fs_storage(tmp_path: Path, clock: FrozenClock) -> FilesystemStorage:
    storage = FilesystemStorage(tmp_path / "media", BASE_URL, SIGNING_KEY, clock=clock)
    storage.ensure_bucket()
    return storage


@pytest.fixture
def s3_storage(moto_s3: MotoS3) -> MinioStorage:
    storage = MinioStorage(
        moto_s3.endpoint,
        moto_s3.access_key,
        moto_s3.secret_key,
        moto_s3.new_bucket_name(),
        region=moto_s3.region,
    )
    storage.ensure_bucket()
    return storage
