"""Exports: requested through the API, built by the task body into object storage, polled,
downloaded through a presigned link; Vietnamese headers; no ID numbers or phones, names only
inside the requester's jurisdiction. Also the nightly reconciliation's alert."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from openpyxl import load_workbook
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.impact.exports import HEADERS
from marketplace.impact.models import ImpactExport
from marketplace.impact.service import ImpactService
from marketplace.sellers.models import Household, PovertyStatus
from marketplace.settings import Settings
from media.storage import FilesystemStorage
from tests.accounts.factories import auth_headers, create_user
from tests.impact.factories import create_product, household_line, settled
from tests.sellers.factories import HUE, HUONG_THUY, HUONG_TRA, create_household
from tests.support.jobs import RecordingSender
from workers import impact as impact_tasks
from workers.runtime import WorkerContext

MARCH = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
NATIONAL_ID = "046095123456"
PHONE = "0935123456"


@pytest.fixture
def storage(tmp_path: Path) -> FilesystemStorage:
    store = FilesystemStorage(tmp_path / "media", "http://testserver/media", b"k" * 32)
    store.ensure_bucket()
    return store


@pytest.fixture
def worker(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    storage: FilesystemStorage,
) -> WorkerContext:
    impact_tasks.process_storage.cache_clear()
    return WorkerContext(
        settings=settings, sessionmaker=sessionmaker, redis=redis, job_sender=RecordingSender()
    )


@dataclass(frozen=True)
class Builder:
    """The worker side of an export: the task's context and the object store it writes."""

    worker: WorkerContext
    storage: FilesystemStorage


@pytest.fixture
def builder(worker: WorkerContext, storage: FilesystemStorage) -> Builder:
    return Builder(worker, storage)


@pytest.fixture
def app_extras(storage: FilesystemStorage) -> dict[str, object]:
    return {"storage": storage}


@pytest.fixture
def app(settings, sessionmaker, redis, job_sender, app_extras):  # type: ignore[no-untyped-def]
    from marketplace.app import create_app  # noqa: PLC0415

    return create_app(
        settings,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=job_sender,
        extras=app_extras,
        skip_logging_setup=True,
    )


async def _household_with_sale(
    session: AsyncSession, impact: ImpactService, commune: str = HUONG_TRA
) -> Household:
    household = await create_household(
        session,
        head_name="Lê Thị Thanh Trà",
        commune_code=commune,
        national_id=NATIONAL_ID if commune == HUONG_TRA else None,
        phone=PHONE if commune == HUONG_TRA else None,
        status=PovertyStatus.POOR,
    )
    product = await create_product(session, household=household)
    await impact.record_event(
        settled(household_line(household, product, 250_000), settled_at=MARCH)
    )
    await impact._uow.session.flush()
    return household


async def _build(
    client: httpx.AsyncClient, headers: dict[str, str], builder: Builder, fmt: str
) -> tuple[dict[str, object], bytes]:
    worker, storage = builder.worker, builder.storage
    requested = await client.post(
        "/api/impact/exports",
        json={"format": fmt, "month_from": "2026-01", "month_to": "2026-03"},
        headers=headers,
    )
    assert requested.status_code == 202, requested.text
    export_id = requested.json()["id"]
    assert requested.json()["status"] == "queued"
    impact_tasks.process_storage.cache_clear()
    outcome = await impact_tasks.build_export(
        worker.unit_of_work, storage, worker.clock, uuid.UUID(export_id)
    )
    assert outcome == "done"
    polled = await client.get(f"/api/impact/exports/{export_id}", headers=headers)
    body = polled.json()
    assert (body["status"], body["progress_percent"]) == ("done", 100)
    url = urlsplit(body["download_url"])
    key = f"exports/{export_id}.{fmt}"
    assert url.path.endswith(key)
    assert "sig=" in url.query
    assert "expires=" in url.query
    return body, storage.get_bytes(key, max_bytes=10_000_000)


async def test_a_commune_official_exports_csv_with_vietnamese_headers_and_names(
    session: AsyncSession,
    impact: ImpactService,
    client: httpx.AsyncClient,
    builder: Builder,
    job_sender: RecordingSender,
) -> None:
    household = await _household_with_sale(session, impact)
    official = await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_level=JurisdictionLevel.COMMUNE,
        jurisdiction_code=HUONG_TRA,
    )
    headers = await auth_headers(session, official)

    body, data = await _build(client, headers, builder, "csv")

    assert "impact.build_export" in job_sender.names()
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == HEADERS
    assert {
        "Hộ gia đình",
        "Xã/Phường",
        "Tình trạng",
        "Doanh thu",
        "Thu nhập tăng thêm/người/tháng",
        "Chuẩn nghèo",
    } <= set(rows[0])
    [row] = [r for r in rows[1:] if r[0] == str(household.id)]
    assert row[1] == "Lê Thị Thanh Trà"
    assert row[2] == "Phường Hương Trà"
    assert row[5] == "Hộ nghèo"
    assert row[7] == "250000"
    assert body["row_count"] == len(rows) - 1
    assert NATIONAL_ID not in text
    assert PHONE not in text


async def test_an_xlsx_export_has_the_same_columns(
    session: AsyncSession,
    impact: ImpactService,
    client: httpx.AsyncClient,
    builder: Builder,
) -> None:
    household = await _household_with_sale(session, impact)
    official = await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_level=JurisdictionLevel.PROVINCE,
        jurisdiction_code=HUE,
    )

    _, data = await _build(client, await auth_headers(session, official), builder, "xlsx")

    sheet = load_workbook(io.BytesIO(data), read_only=True).active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert tuple(values[0]) == HEADERS
    [row] = [r for r in values[1:] if r[0] == str(household.id)]
    assert (row[1], row[7], row[10]) == ("Lê Thị Thanh Trà", 250_000, 2_000_000)
    flat = repr(values)
    assert NATIONAL_ID not in flat
    assert PHONE not in flat


async def test_an_admin_export_has_no_household_names(
    session: AsyncSession,
    impact: ImpactService,
    client: httpx.AsyncClient,
    builder: Builder,
) -> None:
    household = await _household_with_sale(session, impact)
    admin = await create_user(session, role=Role.ADMIN)

    _, data = await _build(client, await auth_headers(session, admin), builder, "csv")

    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    [row] = [r for r in rows[1:] if r[0] == str(household.id)]
    assert row[1] == ""
    assert "Lê Thị Thanh Trà" not in data.decode("utf-8-sig")


async def test_an_export_outside_the_jurisdiction_is_refused_and_nothing_written(
    session: AsyncSession, client: httpx.AsyncClient, job_sender: RecordingSender
) -> None:
    official = await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_level=JurisdictionLevel.COMMUNE,
        jurisdiction_code=HUONG_TRA,
    )

    response = await client.post(
        "/api/impact/exports",
        json={"format": "csv", "commune_code": HUONG_THUY},
        headers=await auth_headers(session, official),
    )

    assert response.status_code == 403
    assert await session.scalar(select(func.count()).select_from(ImpactExport)) == 0
    assert "impact.build_export" not in job_sender.names()


async def test_another_users_export_is_not_found(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    first = await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_level=JurisdictionLevel.PROVINCE,
        jurisdiction_code=HUE,
    )
    second = await create_user(
        session,
        role=Role.OFFICIAL,
        jurisdiction_level=JurisdictionLevel.PROVINCE,
        jurisdiction_code=HUE,
    )
    made = await client.post(
        "/api/impact/exports", json={"format": "csv"}, headers=await auth_headers(session, first)
    )

    response = await client.get(
        f"/api/impact/exports/{made.json()['id']}", headers=await auth_headers(session, second)
    )

    assert response.status_code == 404


async def test_a_difference_between_the_ledgers_is_logged_and_counted(
    session: AsyncSession, impact: ImpactService
) -> None:
    household = await create_household(session)
    product = await create_product(session, household=household)
    agreeing = settled(household_line(household, product, 100_000))
    differing = settled(household_line(household, product, 200_000))
    await impact.record_event(agreeing)
    await impact.record_event(differing)
    before = REGISTRY.get_sample_value("marketplace_attribution_mismatches_total") or 0.0

    with capture_logs() as logs:
        report = await impact.reconcile({agreeing.order_id: 100_000, differing.order_id: 199_999})

    assert [(m.order_id, m.difference) for m in report.mismatches] == [(differing.order_id, 1)]
    after = REGISTRY.get_sample_value("marketplace_attribution_mismatches_total")
    assert after == before + 1
    errors = [e for e in logs if e["log_level"] == "error"]
    assert [e["event"] for e in errors] == ["attribution_mismatch"]
    assert errors[0]["order_id"] == str(differing.order_id)
    assert report.aggregate_mismatches == 0
