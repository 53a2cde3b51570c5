"""Sellers create, change, list and unlist their products; the listing rules hold."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.catalog.models import Product, ProductStatus, Variant
from marketplace.sellers.models import HelperAction
from tests.catalog.conftest import CooperativeSeller, HouseholdSeller, MakeCaller
from tests.catalog.factories import create_lot, create_product
from tests.sellers.factories import HUE, HUONG_TRA, create_household, grant_consent


def product_body(household_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "seller_kind": "household",
        "household_id": str(household_id),
        "name": "Bưởi da xanh",
        "category": "fruit",
        "region": "Hương Trà, Huế",
        "description": "Bưởi da xanh ruột hồng, trồng theo hướng hữu cơ.",
        "season_months": [10, 8, 9, 8],
        "variants": [
            {"label": "hộp 2 kg", "price_amount": 180_000, "available": 40},
            {"label": "thùng 10 kg", "price_amount": 800_000, "available": 10},
        ],
    }
    body.update(overrides)
    return body


async def create_via_api(
    client: httpx.AsyncClient, seller: HouseholdSeller, **overrides: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/products",
        json=product_body(seller.household.id, **overrides),
        headers=seller.farmer.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_farmer_creates_a_draft_listed_under_the_households_commune(
    client: httpx.AsyncClient, seller: HouseholdSeller
) -> None:
    body = await create_via_api(client, seller)

    assert body["status"] == "draft"
    assert body["seller_kind"] == "household"
    assert body["household_id"] == str(seller.household.id)
    assert (body["province_code"], body["commune_code"]) == (HUE, HUONG_TRA)
    assert body["season_months"] == [8, 9, 10]
    assert body["min_price_amount"] == 180_000
    assert [v["label"] for v in body["variants"]] == ["hộp 2 kg", "thùng 10 kg"]


async def test_the_search_text_is_the_folded_name_region_category_and_description(
    client: httpx.AsyncClient, seller: HouseholdSeller, session: AsyncSession
) -> None:
    body = await create_via_api(client, seller)

    stored = await session.scalar(
        select(Product.search_text).where(Product.id == uuid.UUID(body["id"]))
    )
    assert stored == (
        "buoi da xanh huong tra, hue trai cay buoi da xanh ruot hong, trong theo huong huu co."
    )


async def test_renaming_a_product_refreshes_its_search_text(
    client: httpx.AsyncClient, seller: HouseholdSeller, session: AsyncSession
) -> None:
    body = await create_via_api(client, seller)

    response = await client.patch(
        f"/api/products/{body['id']}",
        json={"name": "Thanh trà Hương Trà", "description": ""},
        headers=seller.farmer.headers,
    )

    assert response.status_code == 200, response.text
    stored = await session.scalar(
        select(Product.search_text).where(Product.id == uuid.UUID(body["id"]))
    )
    assert stored == "thanh tra huong tra huong tra, hue trai cay"


async def test_a_product_without_an_active_variant_cannot_be_listed(
    client: httpx.AsyncClient, seller: HouseholdSeller
) -> None:
    body = await create_via_api(client, seller, variants=[])

    response = await client.patch(
        f"/api/products/{body['id']}", json={"status": "listed"}, headers=seller.farmer.headers
    )

    assert response.status_code == 409
    assert response.json()["code"] == "priced_variant_required"
    assert (await client.get(f"/api/products/{body['id']}")).status_code == 404


async def test_listing_a_product_with_a_priced_variant_publishes_it(
    client: httpx.AsyncClient, seller: HouseholdSeller
) -> None:
    body = await create_via_api(client, seller)
    assert (await client.get(f"/api/products/{body['id']}")).status_code == 404

    response = await client.patch(
        f"/api/products/{body['id']}", json={"status": "listed"}, headers=seller.farmer.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "listed"
    public = await client.get(f"/api/products/{body['id']}")
    assert public.status_code == 200
    assert public.json()["seller"]["name"] == "Lộc"


async def test_unlisting_takes_a_product_off_the_public_pages(
    client: httpx.AsyncClient, seller: HouseholdSeller
) -> None:
    body = await create_via_api(client, seller)
    url = f"/api/products/{body['id']}"
    await client.patch(url, json={"status": "listed"}, headers=seller.farmer.headers)

    response = await client.patch(url, json={"status": "unlisted"}, headers=seller.farmer.headers)

    assert response.json()["status"] == "unlisted"
    assert (await client.get(url)).status_code == 404
    listing = (await client.get("/api/products")).json()
    assert body["id"] not in {item["id"] for item in listing["items"]}


async def test_a_product_cannot_go_back_to_draft(
    client: httpx.AsyncClient, seller: HouseholdSeller
) -> None:
    body = await create_via_api(client, seller)
    url = f"/api/products/{body['id']}"
    await client.patch(url, json={"status": "listed"}, headers=seller.farmer.headers)

    response = await client.patch(url, json={"status": "draft"}, headers=seller.farmer.headers)

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "status", "message": "a product cannot go back to draft; unlist it"}
    ]


async def test_the_lowest_price_follows_the_active_variants(
    client: httpx.AsyncClient, seller: HouseholdSeller
) -> None:
    body = await create_via_api(client, seller)
    url = f"/api/products/{body['id']}"
    headers = seller.farmer.headers

    cheap = await client.post(
        f"{url}/variants",
        json={"label": "túi 1 kg", "price_amount": 95_000, "available": 5},
        headers=headers,
    )
    assert cheap.status_code == 201, cheap.text
    after_add = (await client.get(f"/api/seller/products/{body['id']}", headers=headers)).json()
    await client.patch(
        f"{url}/variants/{cheap.json()['id']}", json={"is_active": False}, headers=headers
    )
    after_deactivate = (
        await client.get(f"/api/seller/products/{body['id']}", headers=headers)
    ).json()
    box = next(v for v in body["variants"] if v["label"] == "hộp 2 kg")
    await client.patch(
        f"{url}/variants/{box['id']}", json={"price_amount": 150_000}, headers=headers
    )
    after_price = (await client.get(f"/api/seller/products/{body['id']}", headers=headers)).json()

    assert after_add["min_price_amount"] == 95_000
    assert after_deactivate["min_price_amount"] == 180_000
    assert after_price["min_price_amount"] == 150_000


async def test_the_last_active_variant_of_a_listed_product_cannot_be_deactivated(
    client: httpx.AsyncClient, seller: HouseholdSeller
) -> None:
    body = await create_via_api(
        client, seller, variants=[{"label": "hộp 2 kg", "price_amount": 180_000}]
    )
    url = f"/api/products/{body['id']}"
    await client.patch(url, json={"status": "listed"}, headers=seller.farmer.headers)

    response = await client.patch(
        f"{url}/variants/{body['variants'][0]['id']}",
        json={"is_active": False},
        headers=seller.farmer.headers,
    )

    assert response.status_code == 409
    assert response.json()["code"] == "listed_product_needs_variant"


async def test_a_second_variant_with_the_same_label_is_a_conflict_on_the_label(
    client: httpx.AsyncClient, seller: HouseholdSeller, session: AsyncSession
) -> None:
    body = await create_via_api(client, seller)

    response = await client.post(
        f"/api/products/{body['id']}/variants",
        json={"label": "hộp 2 kg", "price_amount": 170_000},
        headers=seller.farmer.headers,
    )

    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "label"
    count = await session.scalar(
        select(func.count()).select_from(Variant).where(Variant.product_id == uuid.UUID(body["id"]))
    )
    assert count == 2


async def test_a_cooperative_product_needs_a_lot_with_contributions_to_be_listed(
    client: httpx.AsyncClient, coop: CooperativeSeller
) -> None:
    headers = coop.manager.headers
    created = await client.post(
        "/api/products",
        json={
            "seller_kind": "cooperative",
            "cooperative_id": str(coop.cooperative.id),
            "name": "Thanh trà Hương Trà",
            "category": "fruit",
            "variants": [{"label": "thùng 10 kg", "price_amount": 450_000, "available": 30}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    url = f"/api/products/{created.json()['id']}"

    without_lot = await client.patch(url, json={"status": "listed"}, headers=headers)
    lot = await client.post(
        f"{url}/lots", json={"harvest_date": "2026-09-12", "quantity": 900}, headers=headers
    )
    lot_without_contributions = await client.patch(url, json={"status": "listed"}, headers=headers)
    contributed = await client.post(
        f"{url}/lots/{lot.json()['id']}/contributions",
        json={"contributions": [{"household_id": str(coop.poor_member.id), "quantity": 500}]},
        headers=headers,
    )
    listed = await client.patch(url, json={"status": "listed"}, headers=headers)

    assert without_lot.status_code == 409
    assert without_lot.json()["code"] == "cooperative_lot_required"
    assert lot.status_code == 201, lot.text
    assert lot_without_contributions.status_code == 409
    assert contributed.status_code == 201, contributed.text
    assert listed.status_code == 200, listed.text
    assert listed.json()["status"] == "listed"


async def test_another_farmer_gets_403_on_a_listed_product_and_404_on_a_draft(
    client: httpx.AsyncClient, session: AsyncSession, caller: MakeCaller
) -> None:
    other = await caller(Role.FARMER)
    await create_household(session, farmer=other.user)
    listed = await create_product(session)
    draft = await create_product(session, status=ProductStatus.DRAFT)

    on_listed = await client.patch(
        f"/api/products/{listed.id}", json={"name": "Của tôi"}, headers=other.headers
    )
    on_draft = await client.patch(
        f"/api/products/{draft.id}", json={"name": "Của tôi"}, headers=other.headers
    )
    owner_view = await client.get(f"/api/seller/products/{draft.id}", headers=other.headers)

    assert (on_listed.status_code, on_listed.json()["code"]) == (403, "not_your_product")
    assert (on_draft.status_code, on_draft.json()["code"]) == (404, "product_not_found")
    assert owner_view.status_code == 404
    assert await session.scalar(select(Product.name).where(Product.id == listed.id)) != "Của tôi"


async def test_a_cooperative_manager_does_not_manage_another_cooperatives_products(
    client: httpx.AsyncClient, session: AsyncSession, coop: CooperativeSeller, caller: MakeCaller
) -> None:
    product = await create_product(session, cooperative=coop.cooperative)
    stranger = await caller(Role.COOPERATIVE_MANAGER)

    response = await client.patch(
        f"/api/products/{product.id}", json={"name": "X"}, headers=stranger.headers
    )
    own = await client.patch(
        f"/api/products/{product.id}", json={"region": "Hương Trà"}, headers=coop.manager.headers
    )

    assert response.status_code == 403
    assert own.status_code == 200


async def test_a_farmer_cannot_sell_for_another_household(
    client: httpx.AsyncClient, session: AsyncSession, seller: HouseholdSeller
) -> None:
    neighbour = await create_household(session)

    response = await client.post(
        "/api/products", json=product_body(neighbour.id), headers=seller.farmer.headers
    )

    assert (response.status_code, response.json()["code"]) == (403, "not_your_seller")
    assert await session.scalar(select(func.count()).select_from(Product)) == 0


async def test_an_unknown_household_is_the_bodys_bad_field(
    client: httpx.AsyncClient, seller: HouseholdSeller
) -> None:
    response = await client.post(
        "/api/products", json=product_body(uuid.uuid4()), headers=seller.farmer.headers
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "household_id"


async def test_an_admin_changes_any_product(
    client: httpx.AsyncClient, session: AsyncSession, caller: MakeCaller
) -> None:
    admin = await caller(Role.ADMIN)
    product = await create_product(session)

    response = await client.patch(
        f"/api/products/{product.id}", json={"status": "unlisted"}, headers=admin.headers
    )

    assert response.status_code == 200
    assert response.json()["status"] == "unlisted"


async def test_a_helper_with_consent_acts_for_the_household_and_each_act_is_recorded(
    client: httpx.AsyncClient, session: AsyncSession, caller: MakeCaller
) -> None:
    helper = await caller(Role.HELPER)
    household = await create_household(session)
    await grant_consent(session, household, helper.user)

    created = await client.post(
        "/api/products", json=product_body(household.id), headers=helper.headers
    )
    listed = await client.patch(
        f"/api/products/{created.json()['id']}",
        json={"status": "listed"},
        headers=helper.headers,
    )

    assert created.status_code == 201, created.text
    assert listed.status_code == 200
    actions = (
        await session.execute(
            select(HelperAction.action, HelperAction.target_id)
            .where(HelperAction.household_id == household.id)
            .order_by(HelperAction.created_at)
        )
    ).all()
    product_id = uuid.UUID(created.json()["id"])
    assert [tuple(a) for a in actions] == [
        ("catalog.product_create", product_id),
        ("catalog.product_update", product_id),
    ]


async def test_a_helper_without_consent_cannot_touch_the_households_products(
    client: httpx.AsyncClient, session: AsyncSession, caller: MakeCaller
) -> None:
    helper = await caller(Role.HELPER)
    household = await create_household(session)
    draft = await create_product(session, household=household, status=ProductStatus.DRAFT)

    created = await client.post(
        "/api/products", json=product_body(household.id), headers=helper.headers
    )
    changed = await client.patch(
        f"/api/products/{draft.id}", json={"name": "X"}, headers=helper.headers
    )

    assert created.status_code == 403
    assert changed.status_code == 404


async def test_a_farmer_lists_their_own_products_of_every_status(
    client: httpx.AsyncClient, session: AsyncSession, seller: HouseholdSeller
) -> None:
    draft = await create_product(session, household=seller.household, status=ProductStatus.DRAFT)
    listed = await create_product(session, household=seller.household)
    await create_product(session)

    response = await client.get("/api/seller/products", headers=seller.farmer.headers)

    assert response.status_code == 200
    assert {p["id"] for p in response.json()} == {str(draft.id), str(listed.id)}


async def test_the_owner_view_shows_lots_with_trace_urls(
    client: httpx.AsyncClient, session: AsyncSession, seller: HouseholdSeller
) -> None:
    product = await create_product(session, household=seller.household)
    lot = await create_lot(session, product)

    response = await client.get(f"/api/seller/products/{product.id}", headers=seller.farmer.headers)

    [shown] = response.json()["lots"]
    assert shown["trace_code"] == lot.trace_code
    assert shown["trace_url"].endswith(f"/trace/{lot.trace_code}")
