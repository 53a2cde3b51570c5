from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest

from media.storage import (
    FilesystemStorage,
    InvalidKey,
    MinioStorage,
    ObjectInfo,
    ObjectNotFound,
    ObjectTooLarge,
    PresignedUrlRejected,
    create_storage,
    verify_presigned,
)
from tests.media.conftest import BASE_URL, SIGNING_KEY, FrozenClock, md5_hex

KEY = "products/0193a1f2/original"
PHOTO = b"\xff\xd8\xff" + b"buoi-da-xanh" * 100


def signed_parts(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return parts.path.removeprefix("/media/"), query["expires"][0], query["sig"][0]


def test_an_object_round_trips_with_its_size_type_and_md5_etag(
    fs_storage: FilesystemStorage,
) -> None:
    fs_storage.put_bytes(KEY, PHOTO, content_type="image/jpeg")

    assert fs_storage.stat(KEY) == ObjectInfo(
        size=len(PHOTO), content_type="image/jpeg", etag=md5_hex(PHOTO)
    )
    assert fs_storage.get_bytes(KEY, max_bytes=len(PHOTO)) == PHOTO

    fs_storage.delete(KEY)

    assert fs_storage.stat(KEY) is None


def test_a_missing_object_has_no_stat_cannot_be_read_and_deletes_quietly(
    fs_storage: FilesystemStorage,
) -> None:
    assert fs_storage.stat("products/never-uploaded") is None
    with pytest.raises(ObjectNotFound):
        fs_storage.get_bytes("products/never-uploaded", max_bytes=1024)
    fs_storage.delete("products/never-uploaded")


def test_an_object_larger_than_max_bytes_is_refused(fs_storage: FilesystemStorage) -> None:
    fs_storage.put_bytes(KEY, PHOTO, content_type="image/jpeg")

    with pytest.raises(ObjectTooLarge) as refused:
        fs_storage.get_bytes(KEY, max_bytes=len(PHOTO) - 1)

    assert (refused.value.size, refused.value.max_bytes) == (len(PHOTO), len(PHOTO) - 1)


def test_replacing_an_object_leaves_the_new_content_and_no_temporary_files(
    fs_storage: FilesystemStorage,
) -> None:
    fs_storage.put_bytes(KEY, PHOTO, content_type="image/jpeg")
    fs_storage.put_bytes(KEY, b"RIFF....WEBP", content_type="image/webp")

    assert fs_storage.get_bytes(KEY, max_bytes=100) == b"RIFF....WEBP"
    assert fs_storage.stat(KEY) == ObjectInfo(
        size=12, content_type="image/webp", etag=md5_hex(b"RIFF....WEBP")
    )
    assert list((fs_storage.root / ".tmp").iterdir()) == []


def test_stat_trusts_the_file_over_metadata_left_stale_by_a_crash(
    fs_storage: FilesystemStorage,
) -> None:
    fs_storage.put_bytes(KEY, PHOTO, content_type="image/jpeg")
    # As if the process died after renaming the new data but before writing its metadata.
    fs_storage.path_for(KEY).write_bytes(b"other content")

    assert fs_storage.stat(KEY) == ObjectInfo(
        size=13,
        content_type="application/octet-stream",
        etag=md5_hex(b"other content"),
    )


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("../outside", id="parent"),
        pytest.param("products/../../outside", id="parent-in-the-middle"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("products\\..\\..\\outside", id="backslash"),
        pytest.param("products/a\x00.jpg", id="nul"),
        pytest.param("", id="empty"),
        pytest.param(".meta/products/x.json", id="hidden-segment"),
        pytest.param("products//x", id="empty-segment"),
        pytest.param("products/./x", id="dot-segment"),
        pytest.param("products/ảnh.jpg", id="non-ascii"),
        pytest.param("a" * 513, id="too-long"),
    ],
)
def test_unsafe_keys_are_refused_by_every_operation(
    fs_storage: FilesystemStorage, tmp_path: Path, key: str
) -> None:
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    operations: list[Callable[[], object]] = [
        lambda: fs_storage.put_bytes(key, PHOTO, content_type="image/jpeg"),
        lambda: fs_storage.stat(key),
        lambda: fs_storage.get_bytes(key, max_bytes=10),
        lambda: fs_storage.delete(key),
        lambda: fs_storage.presigned_put_url(
            key, content_type="image/jpeg", expires=timedelta(minutes=5)
        ),
        lambda: fs_storage.presigned_get_url(key, expires=timedelta(minutes=5)),
    ]

    for operation in operations:
        with pytest.raises(InvalidKey):
            operation()

    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_symlink_under_the_root_cannot_lead_outside_it(
    fs_storage: FilesystemStorage, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (fs_storage.root / "products").symlink_to(elsewhere)

    with pytest.raises(InvalidKey, match="outside"):
        fs_storage.put_bytes("products/x.jpg", PHOTO, content_type="image/jpeg")

    assert list(elsewhere.iterdir()) == []


# --- presigned URLs -------------------------------------------------------------------------


def test_a_presigned_url_points_at_the_api_and_verifies_until_it_expires(
    fs_storage: FilesystemStorage, clock: FrozenClock
) -> None:
    url = fs_storage.presigned_put_url(KEY, content_type="image/jpeg", expires=timedelta(hours=1))
    key, expires, sig = signed_parts(url)

    assert url.startswith(f"{BASE_URL}/media/{KEY}?")
    assert key == KEY
    assert int(expires) == int(clock.now.timestamp()) + 3600
    fs_storage.verify_presigned(key, "PUT", expires, sig, clock.now)
    fs_storage.verify_presigned(key, "PUT", expires, sig, clock.now + timedelta(seconds=3599))
    verify_presigned(key, "put", expires, sig, clock.now, signing_key=SIGNING_KEY)


class Presented(NamedTuple):
    """What a client presents to the API's media endpoint."""

    key: str
    method: str
    expires: str
    sig: str
    now: datetime


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(
            lambda p: p._replace(now=p.now + timedelta(hours=1)), "expired", id="at-expiry"
        ),
        pytest.param(
            lambda p: p._replace(now=p.now + timedelta(days=2)), "expired", id="long-after"
        ),
        pytest.param(lambda p: p._replace(sig="0" * 64), "bad_signature", id="tampered-signature"),
        pytest.param(
            lambda p: p._replace(sig=p.sig[:-1] + ("1" if p.sig.endswith("0") else "0")),
            "bad_signature",
            id="one-digit-changed",
        ),
        pytest.param(lambda p: p._replace(sig=""), "bad_signature", id="no-signature"),
        pytest.param(lambda p: p._replace(sig="é" * 64), "bad_signature", id="non-ascii-signature"),
        pytest.param(
            lambda p: p._replace(key="products/0193a1f2/other"), "bad_signature", id="other-key"
        ),
        pytest.param(
            lambda p: p._replace(method="GET"), "bad_signature", id="put-url-used-for-get"
        ),
        pytest.param(
            lambda p: p._replace(expires=str(int(p.expires) + 86400)),
            "bad_signature",
            id="extended-expiry",
        ),
        pytest.param(lambda p: p._replace(expires="soon"), "malformed", id="expires-not-a-number"),
        pytest.param(lambda p: p._replace(key="../secrets.json"), "malformed", id="traversal-key"),
    ],
)
def test_a_presigned_url_is_refused_when_expired_or_tampered(
    fs_storage: FilesystemStorage,
    clock: FrozenClock,
    change: Callable[[Presented], Presented],
    reason: str,
) -> None:
    url = fs_storage.presigned_put_url(KEY, content_type="image/jpeg", expires=timedelta(hours=1))
    key, expires, sig = signed_parts(url)
    presented = change(Presented(key, "PUT", expires, sig, clock.now))

    with pytest.raises(PresignedUrlRejected) as rejected:
        fs_storage.verify_presigned(*presented)

    assert rejected.value.reason == reason


def test_a_url_signed_with_another_key_is_refused(
    fs_storage: FilesystemStorage, clock: FrozenClock
) -> None:
    key, expires, sig = signed_parts(fs_storage.presigned_get_url(KEY, expires=timedelta(hours=1)))

    fs_storage.verify_presigned(key, "GET", expires, sig, clock.now)
    with pytest.raises(PresignedUrlRejected):
        verify_presigned(key, "GET", expires, sig, clock.now, signing_key=b"another-key" * 4)


@pytest.mark.parametrize(
    "lifetime", [timedelta(0), timedelta(seconds=-5), timedelta(days=7, seconds=1)]
)
def test_presigned_lifetimes_outside_one_second_to_seven_days_are_refused(
    fs_storage: FilesystemStorage, lifetime: timedelta
) -> None:
    with pytest.raises(ValueError, match="7 days"):
        fs_storage.presigned_get_url(KEY, expires=lifetime)


# --- factory --------------------------------------------------------------------------------


def test_the_factory_builds_the_configured_backend_from_plain_values(tmp_path: Path) -> None:
    filesystem = create_storage(
        "filesystem", root=tmp_path, base_url="http://127.0.0.1:8000/", signing_key=SIGNING_KEY
    )
    s3 = create_storage(
        "s3",
        endpoint="http://minio:9000",
        access_key="marketplace",
        secret_key="marketplace-secret",
        bucket="marketplace",
        root=tmp_path,
    )

    assert isinstance(filesystem, FilesystemStorage)
    assert filesystem.presigned_get_url(KEY, expires=timedelta(minutes=1)).startswith(
        "http://127.0.0.1:8000/media/products/"
    )
    assert isinstance(s3, MinioStorage)
    with pytest.raises(ValueError, match="unknown storage backend"):
        create_storage("ftp")
    with pytest.raises(ValueError, match="root"):
        create_storage("filesystem", base_url="http://x", signing_key=SIGNING_KEY)
    with pytest.raises(ValueError, match="16 bytes"):
        create_storage("filesystem", root=tmp_path, base_url="http://x", signing_key="short")
