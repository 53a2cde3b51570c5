"""Catalog fixtures: sellers with accounts, callers of each role, and the app with a
filesystem store whose signed URLs point at the test client (or moto's S3 server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.models import Role
from marketplace.app import create_app
from marketplace.catalog.storage import media_signing_key
from marketplace.sellers.models import Cooperative, Household, PovertyStatus
from marketplace.settings import Settings
from media.storage import FilesystemStorage, MinioStorage, ObjectStorage
from tests.accounts.factories import auth_headers, create_user
from tests.sellers.factories import Caller, create_cooperative, create_household
from tests.support.jobs import RecordingSender
from tests.support.moto_s3 import MotoS3, moto_s3

__all__ = ["moto_s3"]

BASE_URL = "http://testserver"

MakeCaller = Callable[[Role], Awaitable[Caller]]


@dataclass(frozen=True)
class HouseholdSeller:
    """A farming household and the farmer account that manages it."""

    household: Household
    farmer: Caller


@dataclass(frozen=True)
class CooperativeSeller:
    cooperative: Cooperative
    manager: Caller
    poor_member: Household
    member: Household


@pytest.fixture
def caller(session: AsyncSession) -> MakeCaller:
    async def make(role: Role) -> Caller:
        user = await create_user(session, role=role)
        return Caller(user=user, headers=await auth_headers(session, user))

    return make


@pytest.fixture
async def seller(session: AsyncSession, caller: MakeCaller) -> HouseholdSeller:
    farmer = await caller(Role.FARMER)
    household = await create_household(
        session, farmer=farmer.user, head_name="Nguyễn Bá Lộc", status=PovertyStatus.NEAR_POOR
    )
    return HouseholdSeller(household=household, farmer=farmer)


@pytest.fixture
async def coop(session: AsyncSession, caller: MakeCaller) -> CooperativeSeller:
    manager = await caller(Role.COOPERATIVE_MANAGER)
    poor = await create_household(session, status=PovertyStatus.POOR)
    other = await create_household(session, status=PovertyStatus.NOT_POOR)
    cooperative = await create_cooperative(
        session,
        name="HTX Nông nghiệp Hương Trà",
        managers=[manager.user],
        members=[poor, other],
        joined_on=date(2023, 3, 1),
    )
    return CooperativeSeller(
        cooperative=cooperative, manager=manager, poor_member=poor, member=other
    )


@pytest.fixture
def fs_storage(tmp_path: Path, settings: Settings) -> FilesystemStorage:
    """Signed with the key the app derives, pointing at the test client's host."""
    storage = FilesystemStorage(tmp_path / "media", BASE_URL, media_signing_key(settings))
    storage.ensure_bucket()
    return storage


@pytest.fixture
def app(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    job_sender: RecordingSender,
    fs_storage: FilesystemStorage,
) -> Litestar:
    return create_app(
        settings,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=job_sender,
        skip_logging_setup=True,
        # Tests read their own writes at once: no page cache (test_page_cache.py has one).
        extras={"storage": fs_storage, "page_cache": None},
    )


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


@pytest.fixture
async def s3_client(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    job_sender: RecordingSender,
    s3_storage: ObjectStorage,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with moto's S3 as its object store."""
    s3_app = create_app(
        settings,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=job_sender,
        skip_logging_setup=True,
        extras={"storage": s3_storage, "page_cache": None},
    )
    async with (
        LifespanManager(s3_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=s3_app), base_url=BASE_URL) as c,
    ):
        yield c
