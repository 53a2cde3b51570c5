"""An S3 server from moto, started once per test session (and xdist worker) on a free port.

To use it outside tests/media, import the fixture into that folder's conftest.py:
`from tests.support.moto_s3 import moto_s3  # noqa: F401` (re-exported fixture), then take
`moto_s3: MotoS3` in a test or fixture. The server is in-memory and shared by the session:
give each test a bucket of its own (`moto_s3.new_bucket_name()`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

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
