"""Pinned items: a variant of the session's sellers under a short code, its stock cap moved
out of the variant when pinned and the unsold remainder given back when unpinned or when
the session closes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.catalog.models import ProductStatus, Variant
from marketplace.livestreams.models import LiveItem
from tests.catalog.factories import create_product
from tests.livestreams.factories import World, caller, live_world, pin
from tests.sellers.factories import create_household

HOST_API = "/api/host/livestreams"


async def _available(session: AsyncSession, variant: Variant) -> int:
    await session.refresh(variant)
    return variant.available


async def _items(session: AsyncSession, world: World) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(LiveItem)
            .where(LiveItem.session_id == world.session_id)
        )
        or 0
    )


async def _pin_raw(client: httpx.AsyncClient, world: World, **changes: Any) -> httpx.Response:
    body = {
        "variant_id": str(world.variant.id),
        "code": "CAM1",
        "live_price_amount": 150_000,
        "stock_cap": 10,
        "per_buyer_limit": 5,
    }
    body.update(changes)
    return await client.post(
        f"{HOST_API}/{world.session_id}/items", json=body, headers=world.host.headers
    )


async def test_pinning_moves_the_stock_cap_out_of_the_variant(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, available=40)

    item = await pin(client, world, code="cam1", stock_cap=15)

    assert item["code"] == "CAM1"
    assert (item["stock_cap"], item["available"]) == (15, 15)
    assert await _available(session, world.variant) == 25


async def test_the_public_sees_the_price_and_a_stock_bucket_not_the_exact_stock(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, available=40)
    await pin(client, world, code="CAM1", stock_cap=37, live_price_amount=165_000)

    items = (await client.get(f"/api/livestreams/{world.session_id}/items")).json()

    assert [(i["code"], i["price_amount"], i["stock"], i["sold_out"]) for i in items] == [
        ("CAM1", 165_000, "20+", False)
    ]
    assert "available" not in items[0]


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("1A", id="digits-first"),
        pytest.param("CAM", id="no-digit"),
        pytest.param("123", id="no-letter"),
        pytest.param("ABCDEFG12", id="nine-characters"),
        pytest.param("A1😀", id="emoji"),
        pytest.param("\u0410" + "1", id="cyrillic-a"),
        pytest.param("Á1", id="diacritic"),
        pytest.param("A 1", id="space-inside"),
        pytest.param("", id="empty"),
    ],
)
async def test_a_code_is_ascii_letters_then_digits_at_most_8(
    client: httpx.AsyncClient, session: AsyncSession, code: str
) -> None:
    world = await live_world(client, session)

    response = await _pin_raw(client, world, code=code)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "code"
    assert await _items(session, world) == 0
    assert await _available(session, world.variant) == 40


async def test_a_code_shared_by_two_items_is_refused_whatever_its_case(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, available=40)
    await pin(client, world, code="CAM1", stock_cap=10)

    response = await _pin_raw(client, world, code="cam1", stock_cap=5)

    assert response.status_code == 409
    assert response.json()["code"] == "item_code_taken"
    assert await _items(session, world) == 1
    assert await _available(session, world.variant) == 30


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"live_price_amount": 0}, "live_price_amount", id="price-zero"),
        pytest.param({"live_price_amount": -150_000}, "live_price_amount", id="price-negative"),
        pytest.param({"live_price_amount": 1.5}, "live_price_amount", id="price-not-whole"),
        pytest.param({"per_buyer_limit": 21}, "per_buyer_limit", id="limit-above-cap"),
        pytest.param({"per_buyer_limit": 0}, "per_buyer_limit", id="limit-zero"),
        pytest.param({"stock_cap": 0}, "stock_cap", id="no-stock"),
    ],
)
async def test_bad_item_numbers_are_problems_and_move_no_stock(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    world = await live_world(client, session, available=40)

    response = await _pin_raw(client, world, **changes)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["errors"][0]["field"]
    assert await _items(session, world) == 0
    assert await _available(session, world.variant) == 40


async def test_a_cap_above_the_variants_stock_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, available=8)

    response = await _pin_raw(client, world, stock_cap=9)

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_stock"
    assert await _items(session, world) == 0
    assert await _available(session, world.variant) == 8


async def test_only_listed_variants_of_the_sessions_sellers_can_be_pinned(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    stranger = await create_product(session, household=await create_household(session))
    unlisted = await create_product(session, household=world.household, status=ProductStatus.DRAFT)

    foreign = await _pin_raw(
        client, world, variant_id=str((await first_variant_of(session, stranger)).id)
    )
    draft = await _pin_raw(
        client, world, variant_id=str((await first_variant_of(session, unlisted)).id)
    )

    assert (foreign.status_code, foreign.json()["code"]) == (409, "variant_not_sellable")
    assert (draft.status_code, draft.json()["code"]) == (409, "variant_not_sellable")


async def first_variant_of(session: AsyncSession, product: Any) -> Variant:
    result = await session.execute(
        select(Variant).where(Variant.product_id == product.id).order_by(Variant.label).limit(1)
    )
    return result.scalars().one()


async def test_unpinning_gives_the_unsold_remainder_back(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, available=40)
    item = await pin(client, world, stock_cap=10)

    response = await client.post(
        f"{HOST_API}/{world.session_id}/items/{item['id']}/unpin", headers=world.host.headers
    )
    again = await client.post(
        f"{HOST_API}/{world.session_id}/items/{item['id']}/unpin", headers=world.host.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["unpinned_at"] is not None
    assert response.json()["available"] == 0
    assert await _available(session, world.variant) == 40
    assert (again.status_code, again.json()["code"]) == (409, "item_unpinned")
    public = (await client.get(f"/api/livestreams/{world.session_id}/items")).json()
    assert public == []


async def test_ending_the_session_gives_every_remainder_back(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, available=40)
    await pin(client, world, code="CAM1", stock_cap=10)
    await pin(client, world, code="CAM2", stock_cap=20)
    assert await _available(session, world.variant) == 10

    ended = await client.post(f"{HOST_API}/{world.session_id}/end", headers=world.host.headers)
    late = await _pin_raw(client, world, code="CAM3")

    assert ended.status_code == 200
    assert await _available(session, world.variant) == 40
    assert (late.status_code, late.json()["code"]) == (409, "session_closed")


async def test_the_host_changes_price_limit_and_cap_of_a_pinned_item(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, available=40)
    item = await pin(client, world, stock_cap=10, live_price_amount=150_000)
    url = f"{HOST_API}/{world.session_id}/items/{item['id']}"

    bigger = await client.patch(
        url, json={"stock_cap": 25, "live_price_amount": 139_000}, headers=world.host.headers
    )
    smaller = await client.patch(
        url, json={"stock_cap": 5, "per_buyer_limit": 2}, headers=world.host.headers
    )
    too_big = await client.patch(url, json={"stock_cap": 100}, headers=world.host.headers)
    zero = await client.patch(url, json={"live_price_amount": 0}, headers=world.host.headers)

    assert bigger.status_code == 200, bigger.text
    assert (
        bigger.json()["stock_cap"],
        bigger.json()["available"],
        bigger.json()["live_price_amount"],
    ) == (25, 25, 139_000)
    assert (smaller.json()["stock_cap"], smaller.json()["per_buyer_limit"]) == (5, 2)
    assert (too_big.status_code, too_big.json()["code"]) == (409, "insufficient_stock")
    assert zero.status_code == 422
    assert await _available(session, world.variant) == 35


async def test_another_host_cannot_pin_in_my_session(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    other = await caller(session, Role.HOST)

    response = await client.post(
        f"{HOST_API}/{world.session_id}/items",
        json={
            "variant_id": str(world.variant.id),
            "code": "CAM1",
            "live_price_amount": 150_000,
            "stock_cap": 10,
            "per_buyer_limit": 5,
        },
        headers=other.headers,
    )

    assert (response.status_code, response.json()["code"]) == (404, "session_not_found")
    assert await _available(session, world.variant) == 40
