"""Bad input gets a problem+json naming the field, and nothing is half-written."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.catalog.models import MAX_PRICE_AMOUNT, Product, ProductImage, Variant
from tests.catalog.conftest import HouseholdSeller
from tests.catalog.factories import create_product
from tests.catalog.test_products import product_body


async def counts(session: AsyncSession) -> tuple[int, int, int]:
    products = await session.scalar(select(func.count()).select_from(Product))
    variants = await session.scalar(select(func.count()).select_from(Variant))
    images = await session.scalar(select(func.count()).select_from(ProductImage))
    return int(products or 0), int(variants or 0), int(images or 0)


def with_second_variant(field: str, value: Any) -> dict[str, Any]:
    """The first variant is fine; the second is bad: the first must not be written either."""
    return {
        "variants": [
            {"label": "hộp 2 kg", "price_amount": 180_000, "available": 40},
            {"label": "thùng 10 kg", "price_amount": 800_000, "available": 10, field: value},
        ]
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param(
            with_second_variant("price_amount", -180_000),
            "variants[1].price_amount",
            id="negative-price",
        ),
        pytest.param(
            with_second_variant("price_amount", 0), "variants[1].price_amount", id="zero-price"
        ),
        pytest.param(
            with_second_variant("price_amount", 180_000.5),
            "variants[1].price_amount",
            id="fractional-price",
        ),
        pytest.param(
            with_second_variant("price_amount", 180_000.0),
            "variants[1].price_amount",
            id="float-price",
        ),
        pytest.param(
            with_second_variant("price_amount", "180000"),
            "variants[1].price_amount",
            id="string-price",
        ),
        pytest.param(
            with_second_variant("price_amount", MAX_PRICE_AMOUNT + 1),
            "variants[1].price_amount",
            id="over-the-cap",
        ),
        pytest.param(
            with_second_variant("available", -1), "variants[1].available", id="stock-below-zero"
        ),
        pytest.param(
            with_second_variant("available", 2.5), "variants[1].available", id="fractional-stock"
        ),
        pytest.param(with_second_variant("label", "hộp 2 kg"), "variants", id="duplicate-label"),
        pytest.param({"season_months": [0, 13]}, "season_months[0]", id="month-zero"),
        pytest.param({"name": ""}, "name", id="empty-name"),
        pytest.param({"name": "   "}, "name", id="blank-name"),
        pytest.param({"category": "gold"}, "category", id="unknown-category"),
        pytest.param({"seller_kind": "cooperative"}, "cooperative_id", id="kind-without-its-id"),
    ],
)
async def test_a_bad_product_is_refused_naming_the_field_and_nothing_is_written(
    client: httpx.AsyncClient,
    session: AsyncSession,
    seller: HouseholdSeller,
    overrides: dict[str, Any],
    field: str,
) -> None:
    before = await counts(session)

    response = await client.post(
        "/api/products",
        json=product_body(seller.household.id, **overrides),
        headers=seller.farmer.headers,
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await counts(session) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"price_amount": -1}, "price_amount", id="negative-price"),
        pytest.param({"price_amount": 99.9}, "price_amount", id="fractional-price"),
        pytest.param({"price_amount": "1e5"}, "price_amount", id="string-price"),
        pytest.param({"price_amount": 10**12}, "price_amount", id="over-the-cap"),
        pytest.param({"available": -3}, "available", id="stock-below-zero"),
        pytest.param({"price_amount": None}, "price_amount", id="null-price"),
    ],
)
async def test_a_bad_variant_change_is_refused_and_the_variant_stays_as_it_was(
    client: httpx.AsyncClient,
    session: AsyncSession,
    seller: HouseholdSeller,
    body: dict[str, Any],
    field: str,
) -> None:
    product = await create_product(session, household=seller.household)
    variant = await session.scalar(
        select(Variant).where(Variant.product_id == product.id, Variant.label == "hộp 2 kg")
    )
    assert variant is not None

    response = await client.patch(
        f"/api/products/{product.id}/variants/{variant.id}",
        json=body,
        headers=seller.farmer.headers,
    )

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    await session.refresh(variant)
    assert (variant.price_amount, variant.available) == (180_000, 40)


SLOT = {"content_type": "image/jpeg", "filename": "vườn bưởi.jpg", "size": 2_000_000}


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        pytest.param({"size": 0}, 422, "size", id="zero-bytes"),
        pytest.param({"size": -10}, 422, "size", id="negative-size"),
        pytest.param({"size": 10 * 1024 * 1024 + 1}, 413, "size", id="over-the-cap"),
        pytest.param({"size": 1.5e6}, 422, "size", id="fractional-size"),
        pytest.param({"content_type": "text/plain"}, 422, "content_type", id="text"),
        pytest.param({"content_type": "image/gif"}, 422, "content_type", id="gif"),
        pytest.param({"content_type": "image/svg+xml"}, 422, "content_type", id="svg"),
    ],
)
async def test_a_bad_upload_slot_request_is_refused_naming_the_field(
    *,
    client: httpx.AsyncClient,
    session: AsyncSession,
    seller: HouseholdSeller,
    change: dict[str, Any],
    status: int,
    field: str,
) -> None:
    product = await create_product(session, household=seller.household)
    body = copy.deepcopy(SLOT)
    body.update(change)
    before = await counts(session)

    response = await client.post(
        f"/api/products/{product.id}/images/upload-slot", json=body, headers=seller.farmer.headers
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await counts(session) == before
