from __future__ import annotations

import socket
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from media.storage import (
    InvalidKey,
    MinioStorage,
    ObjectInfo,
    ObjectNotFound,
    ObjectTooLarge,
    StorageError,
    StorageUnavailable,
)
from tests.media.conftest import md5_hex
from tests.media.sample_images import plain_jpeg
from tests.support.moto_s3 import MotoS3, presigned_signature_matches

KEY = "products/0193a1f2/original"


def test_ensure_bucket_creates_the_bucket_once_and_may_run_again(moto_s3: MotoS3) -> None:
    storage = MinioStorage(
        moto_s3.endpoint,
        moto_s3.access_key,
        moto_s3.secret_key,
        moto_s3.new_bucket_name(),
        region=moto_s3.region,
    )
    with pytest.raises(StorageError):
        storage.put_bytes(KEY, b"x", content_type="image/jpeg")

    storage.ensure_bucket()
    storage.ensure_bucket()
    storage.put_bytes(KEY, b"x", content_type="image/jpeg")

    assert storage.stat(KEY) is not None


def test_writing_to_a_missing_bucket_is_final_not_a_retry(moto_s3: MotoS3) -> None:
    storage = MinioStorage(
        moto_s3.endpoint, moto_s3.access_key, moto_s3.secret_key, moto_s3.new_bucket_name()
    )

    with pytest.raises(StorageError) as failed:
        storage.put_bytes(KEY, b"x", content_type="image/jpeg")

    assert not isinstance(failed.value, StorageUnavailable)
    assert "NoSuchBucket" in str(failed.value)


def test_an_object_round_trips_with_its_size_type_and_md5_etag(s3_storage: MinioStorage) -> None:
    photo = plain_jpeg()

    s3_storage.put_bytes(KEY, photo, content_type="image/jpeg")

    assert s3_storage.stat(KEY) == ObjectInfo(
        size=len(photo), content_type="image/jpeg", etag=md5_hex(photo)
    )
    assert s3_storage.get_bytes(KEY, max_bytes=len(photo)) == photo

    s3_storage.delete(KEY)

    assert s3_storage.stat(KEY) is None


def test_a_missing_object_has_no_stat_cannot_be_read_and_deletes_quietly(
    s3_storage: MinioStorage,
) -> None:
    assert s3_storage.stat("products/never-uploaded") is None
    with pytest.raises(ObjectNotFound):
        s3_storage.get_bytes("products/never-uploaded", max_bytes=1024)
    s3_storage.delete("products/never-uploaded")


def test_an_object_larger_than_max_bytes_is_refused_unread(s3_storage: MinioStorage) -> None:
    s3_storage.put_bytes(KEY, b"\xff" * 4096, content_type="image/jpeg")

    with pytest.raises(ObjectTooLarge) as refused:
        s3_storage.get_bytes(KEY, max_bytes=4095)

    assert (refused.value.size, refused.value.max_bytes) == (4096, 4095)
    assert s3_storage.get_bytes(KEY, max_bytes=4096) == b"\xff" * 4096


def test_a_file_of_more_than_five_mebibytes_is_stored_in_one_put(s3_storage: MinioStorage) -> None:
    # One PUT keeps the etag the content's MD5 (a multipart upload would give "<md5>-2").
    data = b"\x00" * (6 * 1024 * 1024)

    s3_storage.put_bytes(KEY, data, content_type="application/octet-stream")

    stat = s3_storage.stat(KEY)
    assert stat is not None
    assert stat.etag == md5_hex(data)


async def test_a_client_uploads_through_the_presigned_put_url_and_the_object_appears(
    s3_storage: MinioStorage,
) -> None:
    photo = plain_jpeg()
    url = s3_storage.presigned_put_url(
        KEY, content_type="image/jpeg", expires=timedelta(minutes=15)
    )

    async with httpx.AsyncClient() as client:
        response = await client.put(url, content=photo, headers={"Content-Type": "image/jpeg"})

    assert response.status_code == 200
    assert s3_storage.stat(KEY) == ObjectInfo(
        size=len(photo), content_type="image/jpeg", etag=md5_hex(photo)
    )
    assert s3_storage.get_bytes(KEY, max_bytes=10 * 1024 * 1024) == photo


async def test_a_presigned_get_url_serves_the_object(s3_storage: MinioStorage) -> None:
    s3_storage.put_bytes("products/0193a1f2/w320.webp", b"RIFF....WEBP", content_type="image/webp")
    url = s3_storage.presigned_get_url("products/0193a1f2/w320.webp", expires=timedelta(hours=1))

    async with httpx.AsyncClient() as client:
        response = await client.get(url)

    assert response.status_code == 200
    assert response.content == b"RIFF....WEBP"
    assert response.headers["content-type"] == "image/webp"


def test_presigned_urls_name_the_public_endpoint_when_one_is_set(moto_s3: MotoS3) -> None:
    storage = MinioStorage(
        "http://minio:9000",
        moto_s3.access_key,
        moto_s3.secret_key,
        "marketplace",
        public_endpoint="https://media.choque.vn",
    )

    url = urlsplit(storage.presigned_get_url(KEY, expires=timedelta(minutes=5)))

    assert (url.scheme, url.netloc, url.path) == ("https", "media.choque.vn", f"/marketplace/{KEY}")
    assert "X-Amz-Signature=" in url.query


def test_unsafe_keys_are_refused_before_any_request(s3_storage: MinioStorage) -> None:
    for key in ("../other-bucket/x", "/abs", "a\\b", "a\x00b", ""):
        with pytest.raises(InvalidKey):
            s3_storage.put_bytes(key, b"x", content_type="image/jpeg")
        with pytest.raises(InvalidKey):
            s3_storage.presigned_put_url(key, content_type="image/jpeg", expires=timedelta(1))


def test_an_unreachable_store_is_reported_as_unavailable_so_tasks_retry() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    storage = MinioStorage(
        f"127.0.0.1:{closed_port}", "key", "secret", "marketplace", connect_timeout=1, retries=0
    )

    with pytest.raises(StorageUnavailable):
        storage.stat(KEY)
    with pytest.raises(StorageUnavailable):
        storage.ensure_bucket()


@pytest.mark.parametrize(
    ("endpoint", "secure"),
    [("https://minio:9000", False), ("minio:9000", True), ("http://minio:9000", False)],
)
def test_the_endpoint_may_carry_its_scheme(endpoint: str, secure: bool) -> None:
    storage = MinioStorage(endpoint, "key", "secret", "marketplace", secure=secure)

    url = storage.presigned_get_url(KEY, expires=timedelta(minutes=1))

    assert url.startswith(
        ("https://" if "https" in endpoint or secure else "http://") + "minio:9000/"
    )


def test_an_endpoint_whose_scheme_contradicts_secure_is_refused() -> None:
    with pytest.raises(ValueError, match="secure"):
        MinioStorage("http://minio:9000", "key", "secret", "marketplace", secure=True)


def test_a_url_signed_for_the_public_endpoint_is_valid_there_and_reaches_the_object(
    moto_s3: MotoS3,
) -> None:
    """Compose: the API talks to `minio:9000`, browsers to the published `localhost:9000`,
    which forwards to the same server with the Host header the browser sent."""
    public = "localhost:9000"
    storage = MinioStorage(
        moto_s3.endpoint,
        moto_s3.access_key,
        moto_s3.secret_key,
        moto_s3.new_bucket_name(),
        region=moto_s3.region,
        public_endpoint=f"http://{public}",
    )
    storage.ensure_bucket()
    photo = plain_jpeg()
    put_url = storage.presigned_put_url(
        KEY, content_type="image/jpeg", expires=timedelta(minutes=15)
    )
    get_url = storage.presigned_get_url(KEY, expires=timedelta(minutes=15))

    def through_published_port(url: str) -> str:
        return urlunsplit(urlsplit(url)._replace(netloc=moto_s3.endpoint))

    with httpx.Client() as browser:
        uploaded = browser.put(
            through_published_port(put_url),
            content=photo,
            headers={"Host": public, "Content-Type": "image/jpeg"},
        )
        fetched = browser.get(through_published_port(get_url), headers={"Host": public})

    for url, method in ((put_url, "PUT"), (get_url, "GET")):
        assert urlsplit(url).netloc == public
        signed = {"secret_key": moto_s3.secret_key, "method": method}
        assert presigned_signature_matches(url, host=public, **signed)
        assert not presigned_signature_matches(url, host=moto_s3.endpoint, **signed)
    assert uploaded.status_code == 200
    assert fetched.status_code == 200
    assert fetched.content == photo
    assert storage.stat(KEY) == ObjectInfo(
        size=len(photo), content_type="image/jpeg", etag=md5_hex(photo)
    )


def test_without_a_public_endpoint_urls_are_signed_for_the_endpoint_itself(
    s3_storage: MinioStorage, moto_s3: MotoS3
) -> None:
    url = s3_storage.presigned_get_url(KEY, expires=timedelta(minutes=5))

    assert urlsplit(url).netloc == moto_s3.endpoint
    assert presigned_signature_matches(
        url, host=moto_s3.endpoint, secret_key=moto_s3.secret_key, method="GET"
    )
    assert not presigned_signature_matches(
        url, host=moto_s3.endpoint, secret_key="another-secret", method="GET"
    )
