"""Lots get unambiguous trace codes; cooperative lots record member contributions; the
public trace page and its QR code resolve a code to where the food comes from."""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta

import httpx
import pytest
import segno
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.catalog.certificates import vietnam_today
from marketplace.catalog.models import CertificationKind, Lot, LotContribution, ProductStatus
from marketplace.catalog.service import TRACE_ALPHABET, TRACE_CODE_LENGTH, normalise_trace_code
from marketplace.catalog.storage import public_base_url
from marketplace.db import utcnow
from marketplace.settings import Settings
from tests.catalog.conftest import CooperativeSeller, HouseholdSeller
from tests.catalog.factories import create_certification, create_lot, create_product
from tests.sellers.factories import add_member, create_household


def lot_url(product_id: uuid.UUID) -> str:
    return f"/api/products/{product_id}/lots"


async def contribution_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(LotContribution)) or 0)


async def test_a_households_lot_gets_a_short_unambiguous_trace_code(
    client: httpx.AsyncClient, session: AsyncSession, seller: HouseholdSeller
) -> None:
    product = await create_product(session, household=seller.household)

    response = await client.post(
        lot_url(product.id),
        json={"harvest_date": "2026-10-20", "quantity": 1200, "unit": "kg"},
        headers=seller.farmer.headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert len(body["trace_code"]) == TRACE_CODE_LENGTH
    assert set(body["trace_code"]) <= set(TRACE_ALPHABET)
    assert not set(body["trace_code"]) & set("01IO")
    assert (body["seller_kind"], body["household_id"]) == ("household", str(seller.household.id))
    assert body["contributions"] == []


def test_trace_codes_are_typed_without_regard_to_case_spaces_or_dashes() -> None:
    assert normalise_trace_code(" hx7k-2m9q ") == "HX7K2M9Q"


async def test_a_households_lot_takes_no_contributions(
    client: httpx.AsyncClient, session: AsyncSession, seller: HouseholdSeller
) -> None:
    product = await create_product(session, household=seller.household)

    response = await client.post(
        lot_url(product.id),
        json={
            "harvest_date": "2026-10-20",
            "quantity": 1200,
            "contributions": [{"household_id": str(seller.household.id), "quantity": 10}],
        },
        headers=seller.farmer.headers,
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "contributions"
    assert await session.scalar(select(func.count()).select_from(Lot)) == 0


async def test_a_lot_cannot_be_harvested_in_the_future(
    client: httpx.AsyncClient, session: AsyncSession, seller: HouseholdSeller
) -> None:
    product = await create_product(session, household=seller.household)
    tomorrow = vietnam_today(utcnow()) + timedelta(days=1)

    response = await client.post(
        lot_url(product.id),
        json={"harvest_date": tomorrow.isoformat(), "quantity": 5},
        headers=seller.farmer.headers,
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "harvest_date"


async def test_a_cooperative_lot_records_each_members_contribution(
    client: httpx.AsyncClient, session: AsyncSession, coop: CooperativeSeller
) -> None:
    product = await create_product(session, cooperative=coop.cooperative)

    response = await client.post(
        lot_url(product.id),
        json={
            "harvest_date": "2026-09-12",
            "quantity": 900,
            "contributions": [
                {"household_id": str(coop.poor_member.id), "quantity": 500},
                {"household_id": str(coop.member.id), "quantity": 400},
            ],
        },
        headers=coop.manager.headers,
    )

    assert response.status_code == 201, response.text
    assert sorted(
        (c["household_id"], c["quantity"]) for c in response.json()["contributions"]
    ) == sorted([(str(coop.poor_member.id), 500), (str(coop.member.id), 400)])


@pytest.mark.parametrize(
    ("joined_on", "left_on"),
    [
        pytest.param(date(2026, 9, 13), None, id="joined-after-the-harvest"),
        pytest.param(date(2023, 3, 1), date(2026, 9, 12), id="left-on-the-harvest-day"),
        pytest.param(date(2023, 3, 1), date(2025, 1, 1), id="left-long-before"),
    ],
)
async def test_only_a_member_on_the_harvest_day_may_contribute(
    client: httpx.AsyncClient,
    session: AsyncSession,
    coop: CooperativeSeller,
    joined_on: date,
    left_on: date | None,
) -> None:
    outsider = await create_household(session)
    await add_member(session, coop.cooperative, outsider, joined_on=joined_on, left_on=left_on)
    product = await create_product(session, cooperative=coop.cooperative)

    response = await client.post(
        lot_url(product.id),
        json={
            "harvest_date": "2026-09-12",
            "quantity": 900,
            "contributions": [
                {"household_id": str(coop.poor_member.id), "quantity": 500},
                {"household_id": str(outsider.id), "quantity": 100},
            ],
        },
        headers=coop.manager.headers,
    )

    assert response.status_code == 422
    assert response.json()["code"] == "not_a_member"
    assert response.json()["errors"][0]["field"] == "contributions[1].household_id"
    assert await session.scalar(select(func.count()).select_from(Lot)) == 0
    assert await contribution_count(session) == 0


@pytest.mark.parametrize(
    ("contributions", "field"),
    [
        pytest.param([("poor", 600), ("member", 400)], "contributions", id="more-than-the-lot"),
        pytest.param([("poor", 100), ("poor", 100)], "contributions[1].household_id", id="twice"),
        pytest.param([("poor", 0)], "contributions[0].quantity", id="zero"),
        pytest.param([("poor", -5)], "contributions[0].quantity", id="negative"),
    ],
)
async def test_bad_contributions_are_refused_and_nothing_is_written(
    client: httpx.AsyncClient,
    session: AsyncSession,
    coop: CooperativeSeller,
    contributions: list[tuple[str, int]],
    field: str,
) -> None:
    product = await create_product(session, cooperative=coop.cooperative)
    ids = {"poor": coop.poor_member.id, "member": coop.member.id}

    response = await client.post(
        lot_url(product.id),
        json={
            "harvest_date": "2026-09-12",
            "quantity": 900,
            "contributions": [
                {"household_id": str(ids[who]), "quantity": qty} for who, qty in contributions
            ],
        },
        headers=coop.manager.headers,
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert await session.scalar(select(func.count()).select_from(Lot)) == 0


async def test_later_contributions_may_not_push_a_lot_past_its_quantity(
    client: httpx.AsyncClient, session: AsyncSession, coop: CooperativeSeller
) -> None:
    product = await create_product(session, cooperative=coop.cooperative)
    lot = await create_lot(
        session,
        product,
        harvest_date=date(2026, 9, 12),
        quantity=900,
        contributions=[(coop.poor_member, 800)],
    )

    response = await client.post(
        f"{lot_url(product.id)}/{lot.id}/contributions",
        json={"contributions": [{"household_id": str(coop.member.id), "quantity": 200}]},
        headers=coop.manager.headers,
    )

    assert response.status_code == 422
    assert await contribution_count(session) == 1


async def test_the_trace_page_shows_the_given_name_and_commune_of_the_household(
    client: httpx.AsyncClient, session: AsyncSession, seller: HouseholdSeller, settings: Settings
) -> None:
    product = await create_product(session, household=seller.household)
    lot = await create_lot(session, product, harvest_date=date(2026, 10, 20))
    await create_certification(session, household=seller.household)
    await create_certification(session, product=product, kind=CertificationKind.OCOP, stars=4)

    response = await client.get(f"/trace/{lot.trace_code.lower()}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == lot.trace_code
    assert body["harvest_date"] == "2026-10-20"
    assert body["product"]["name"] == product.name
    assert body["producer"] == {
        "kind": "household",
        "name": "Lộc",
        "commune_name": "Phường Hương Trà",
        "province_name": "Thành phố Huế",
        "contributing_households": None,
    }
    assert sorted(c["kind"] for c in body["certifications"]) == ["ocop", "vietgap"]
    assert body["trace_url"] == f"{public_base_url(settings)}/trace/{lot.trace_code}"
    assert "Nguyễn" not in response.text
    assert seller.household.phone not in response.text
    assert response.headers["etag"]
    assert response.headers["cache-control"].startswith("public")


async def test_a_cooperative_lot_traces_to_the_cooperative_and_its_contributors(
    client: httpx.AsyncClient, session: AsyncSession, coop: CooperativeSeller
) -> None:
    product = await create_product(session, cooperative=coop.cooperative)
    lot = await create_lot(
        session,
        product,
        contributions=[(coop.poor_member, 500), (coop.member, 300)],
    )

    body = (await client.get(f"/trace/{lot.trace_code}")).json()

    assert body["producer"]["kind"] == "cooperative"
    assert body["producer"]["name"] == "HTX Nông nghiệp Hương Trà"
    assert body["producer"]["contributing_households"] == 2


async def test_a_lot_stays_traceable_after_its_product_is_unlisted(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    product = await create_product(session, status=ProductStatus.UNLISTED)
    lot = await create_lot(session, product)

    assert (await client.get(f"/trace/{lot.trace_code}")).status_code == 200


@pytest.mark.parametrize("code", ["ZZZZZZZZ", "0000OOOO", "abc", "A" * 40])
async def test_an_unknown_trace_code_is_a_404(client: httpx.AsyncClient, code: str) -> None:
    response = await client.get(f"/trace/{code}")

    assert response.status_code == 404
    assert response.json()["code"] == "trace_code_not_found"
    assert (await client.get(f"/trace/{code}/qr.png")).status_code == 404


async def test_the_qr_code_encodes_the_public_trace_url(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    lot = await create_lot(session, await create_product(session))

    response = await client.get(f"/trace/{lot.trace_code}/qr.png")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    expected = io.BytesIO()
    segno.make(f"{public_base_url(settings)}/trace/{lot.trace_code}", error="m").save(
        expected, kind="png", scale=8, border=4
    )
    assert response.content == expected.getvalue()
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    assert image.width == image.height > 100
