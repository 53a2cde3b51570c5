"""An S3 server from moto, started once per test session (and xdist worker) on a free port.

To use it outside tests/media, import the fixture into that folder's conftest.py:
`from tests.support.moto_s3 import moto_s3  # noqa: F401` (re-exported fixture), then take
`moto_s3: MotoS3` in a test or fixture. The server is in-memory and shared by the session:
give each test a bucket of its own (`moto_s3.new_bucket_name()`).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from moto.server import ThreadedMotoServer


@dataclass(frozen=True)
class MotoS3:
    endpoint: str
    """`host:port`, the form `MinioStorage` (and the S3_ENDPOINT setting) takes."""
    access_key: str
    secret_key: str
    region: str

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @staticmethod
    def new_bucket_name() -> str:
        return f"test-{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoS3(
            endpoint=f"{host}:{port}",
            access_key="moto-access-key",
            secret_key="moto-secret-key",
            region="us-east-1",
        )
    finally:
        server.stop()


def presigned_signature_matches(url: str, *, host: str, secret_key: str, method: str) -> bool:
    """Whether a SigV4 presigned S3 URL verifies for a request to `host`, recomputed from
    AWS's published algorithm. moto's server does not check query signatures (it serves
    a tampered URL), so a test that needs to know a URL is valid for a host asks this."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = query.pop("X-Amz-Signature", "")
    _, date, region, service, _ = query["X-Amz-Credential"].split("/")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )
    canonical_request = "\n".join(
        [method, parts.path, canonical_query, f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
