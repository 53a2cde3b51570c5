"""VietGAP and OCOP certificates: default validity, the expiry day, bad dates, and the daily
warning sent once per certificate even when two runs race."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.catalog.certificates import (
    CertificationPolicy,
    add_months,
    is_valid_on,
    vietnam_today,
)
from marketplace.catalog.models import Certification, CertificationKind, SellerNotice
from marketplace.catalog.service import CatalogService
from marketplace.db import create_sessionmaker, utcnow
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.catalog.conftest import CooperativeSeller, HouseholdSeller
from tests.catalog.factories import create_certification, create_product
from tests.sellers.factories import create_household
from tests.support.jobs import RecordingSender

# 2026-11-23 10:00 in Vietnam.
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)


def cert_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "vietgap",
        "certifier": "Trung tâm Chứng nhận Phù hợp (QUACERT)",
        "number": "VietGAP-TT-12-03-46-0021",
        "scope": "Ổi: 2,5 ha tại Hương Xuân",
        "valid_from": "2025-06-01",
    }
    body.update(overrides)
    return body


async def post_cert(
    client: httpx.AsyncClient, seller: HouseholdSeller, **overrides: Any
) -> httpx.Response:
    return await client.post(
        "/api/certifications",
        json=cert_body(household_id=str(seller.household.id), **overrides),
        headers=seller.farmer.headers,
    )


async def cert_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Certification)) or 0)


async def test_a_vietgap_certificate_without_an_end_runs_two_years(
    client: httpx.AsyncClient, seller: HouseholdSeller
) -> None:
    response = await post_cert(client, seller)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["valid_from"], body["valid_to"]) == ("2025-06-01", "2027-06-01")
    assert body["subject"] == "household"
    assert body["valid"] is True


async def test_a_four_star_ocop_certificate_runs_36_months(
    client: httpx.AsyncClient, seller: HouseholdSeller, session: AsyncSession
) -> None:
    product = await create_product(session, household=seller.household)

    response = await client.post(
        "/api/certifications",
        json=cert_body(
            kind="ocop",
            stars=4,
            product_id=str(product.id),
            certifier="UBND Thành phố Huế",
            number="2154/QĐ-UBND",
            valid_from="2024-02-29",
        ),
        headers=seller.farmer.headers,
    )

    assert response.status_code == 201, response.text
    assert response.json()["valid_to"] == "2027-02-28"
    assert response.json()["subject"] == "product"


def test_the_vietgap_validity_is_a_setting() -> None:
    policy = CertificationPolicy(vietgap_validity_months=36)

    assert add_months(date(2025, 6, 1), policy.vietgap_validity_months) == date(2028, 6, 1)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"valid_to": "2025-05-31"}, "valid_to", id="ends-before-it-starts"),
        pytest.param({"valid_to": "2025-06-01"}, "valid_to", id="ends-the-day-it-starts"),
        pytest.param({"kind": "ocop", "stars": 2}, "valid_to", id="two-star-ocop-without-end"),
        pytest.param({"kind": "ocop"}, "stars", id="ocop-without-stars"),
        pytest.param({"kind": "ocop", "stars": 6}, "stars", id="six-stars"),
        pytest.param({"stars": 3}, "stars", id="vietgap-with-stars"),
        pytest.param({"valid_from": "2025-13-01"}, "valid_from", id="not-a-date"),
    ],
)
async def test_bad_certificates_are_refused_naming_the_field_and_nothing_is_written(
    client: httpx.AsyncClient,
    seller: HouseholdSeller,
    session: AsyncSession,
    overrides: dict[str, Any],
    field: str,
) -> None:
    response = await post_cert(client, seller, **overrides)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await cert_count(session) == 0


async def test_a_certificate_names_exactly_one_subject(
    client: httpx.AsyncClient, seller: HouseholdSeller, session: AsyncSession
) -> None:
    response = await client.post(
        "/api/certifications", json=cert_body(), headers=seller.farmer.headers
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "product_id"


async def test_nobody_certifies_a_household_they_do_not_manage(
    client: httpx.AsyncClient, seller: HouseholdSeller, session: AsyncSession
) -> None:
    neighbour = await create_household(session)

    response = await client.post(
        "/api/certifications",
        json=cert_body(household_id=str(neighbour.id)),
        headers=seller.farmer.headers,
    )

    assert response.status_code == 403
    assert await cert_count(session) == 0


@pytest.mark.parametrize(
    ("day", "valid"),
    [
        pytest.param(date(2026, 11, 22), True, id="the-day-before-expiry"),
        pytest.param(date(2026, 11, 23), False, id="the-expiry-day"),
        pytest.param(date(2024, 11, 23), True, id="the-first-day"),
        pytest.param(date(2024, 11, 22), False, id="before-it-starts"),
    ],
)
def test_a_certificate_stops_being_valid_on_its_expiry_day(day: date, valid: bool) -> None:
    assert is_valid_on(date(2024, 11, 23), date(2026, 11, 23), day) is valid


async def test_the_public_page_shows_a_certificate_expiring_today_as_not_valid(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    today = vietnam_today(utcnow())
    product = await create_product(session)
    await create_certification(session, product=product, valid_to=today, number="HET-HAN")
    await create_certification(
        session, product=product, valid_to=today + timedelta(days=1), number="CON-HAN"
    )

    body = (await client.get(f"/api/products/{product.id}")).json()

    assert {c["number"]: c["valid"] for c in body["certifications"]} == {
        "HET-HAN": False,
        "CON-HAN": True,
    }


def test_today_is_the_vietnamese_calendar_day() -> None:
    assert vietnam_today(datetime(2026, 11, 22, 17, 0, tzinfo=UTC)) == date(2026, 11, 23)
    assert vietnam_today(datetime(2026, 11, 22, 16, 59, tzinfo=UTC)) == date(2026, 11, 22)


# ---- Expiry warnings -----------------------------------------------------------------------


def catalog(uow: UnitOfWork, settings: Settings, now: datetime = NOW) -> CatalogService:
    return CatalogService(uow, settings, clock=lambda: now)


async def test_sellers_are_warned_thirty_days_before_expiry_and_only_once(
    session: AsyncSession, uow: UnitOfWork, settings: Settings, coop: CooperativeSeller
) -> None:
    household = await create_household(session)
    product = await create_product(session, cooperative=coop.cooperative)
    due_household = await create_certification(
        session, household=household, valid_to=TODAY + timedelta(days=30)
    )
    due_product = await create_certification(
        session,
        product=product,
        kind=CertificationKind.OCOP,
        valid_to=TODAY + timedelta(days=1),
    )
    later = await create_certification(
        session, household=household, valid_to=TODAY + timedelta(days=31)
    )
    await create_certification(session, household=household, valid_to=TODAY)

    first = await catalog(uow, settings).warn_expiring_certificates()
    again = await catalog(uow, settings).warn_expiring_certificates()
    tomorrow = await catalog(uow, settings, NOW + timedelta(days=1)).warn_expiring_certificates()

    assert (first, again, tomorrow) == (2, 0, 1)
    notices = (await uow.session.execute(select(SellerNotice))).scalars().all()
    by_subject = {n.subject_id: n for n in notices}
    assert set(by_subject) == {due_household.id, due_product.id, later.id}
    assert by_subject[due_household.id].household_id == household.id
    assert by_subject[due_product.id].cooperative_id == coop.cooperative.id
    assert by_subject[due_product.id].seller_kind == "cooperative"
    assert "hết hiệu lực ngày" in by_subject[due_household.id].message
    assert by_subject[due_household.id].due_on == TODAY + timedelta(days=30)


async def test_a_seller_reads_their_warnings(
    client: httpx.AsyncClient,
    session: AsyncSession,
    uow: UnitOfWork,
    settings: Settings,
    seller: HouseholdSeller,
) -> None:
    today = vietnam_today(utcnow())
    cert = await create_certification(
        session, household=seller.household, valid_to=today + timedelta(days=10)
    )
    await catalog(uow, settings, utcnow()).warn_expiring_certificates()
    await uow.commit()

    response = await client.get("/api/seller/notices", headers=seller.farmer.headers)

    assert response.status_code == 200
    [notice] = response.json()
    assert (notice["kind"], notice["subject_id"]) == ("certificate_expiring", str(cert.id))


@dataclass
class Committed:
    maker: async_sessionmaker[AsyncSession]
    households: list[uuid.UUID] = field(default_factory=list)


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[Committed]:
    """Real commits (two runs must see each other's); this test's rows removed after."""
    state = Committed(create_sessionmaker(engine))
    yield state
    async with state.maker() as session, session.begin():
        ids = {"ids": state.households}
        await session.execute(
            text("DELETE FROM seller_notices WHERE household_id = ANY(:ids)"), ids
        )
        await session.execute(
            text("DELETE FROM certifications WHERE household_id = ANY(:ids)"), ids
        )
        await session.execute(
            text("DELETE FROM household_status_entries WHERE household_id = ANY(:ids)"), ids
        )
        await session.execute(text("DELETE FROM households WHERE id = ANY(:ids)"), ids)


async def _warn(maker: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    async with UnitOfWork(maker, RecordingSender()) as uow:
        warned = await catalog(uow, settings).warn_expiring_certificates()
        # Hold the claim a moment so the other run really overlaps it.
        await asyncio.sleep(0.2)
        await uow.commit()
        return warned


@pytest.mark.concurrency
async def test_two_concurrent_runs_of_the_warning_warn_each_certificate_once(
    committed: Committed, settings: Settings
) -> None:
    async with committed.maker() as session, session.begin():
        household = await create_household(session)
        committed.households.append(household.id)
        for days in (5, 12, 29):
            await create_certification(
                session, household=household, valid_to=TODAY + timedelta(days=days)
            )

    results = await asyncio.gather(
        _warn(committed.maker, settings), _warn(committed.maker, settings)
    )

    assert sorted(results) == [0, 3]
    async with committed.maker() as session:
        notices = await session.scalar(
            select(func.count())
            .select_from(SellerNotice)
            .where(SellerNotice.household_id == household.id)
        )
    assert notices == 3
