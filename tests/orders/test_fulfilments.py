"""Sellers' side of an order, and claiming a comment order, over HTTP."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.orders.schemas import LineRequest, PlaceOrder
from marketplace.orders.service import OrderService
from marketplace.sellers.models import ConsentScope
from tests.accounts.factories import auth_headers, create_user
from tests.orders.factories import SHIPPING_BODY, catalog_order, create_variant
from tests.sellers.factories import create_cooperative, create_household, grant_consent


async def test_each_seller_sees_and_ships_only_their_own_part_of_an_order(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    farmer = await create_user(session, role=Role.FARMER)
    household = await create_household(session, farmer=farmer)
    manager = await create_user(session, role=Role.COOPERATIVE_MANAGER)
    cooperative = await create_cooperative(session, managers=[manager])
    buyer = await create_user(session, role=Role.BUYER)
    cam = await create_variant(session, household=household)
    buoi = await create_variant(session, cooperative=cooperative)
    order = await orders.place_order(catalog_order(buyer, cam, buoi, payment_method="cod"))
    farmer_headers = await auth_headers(session, farmer)
    manager_headers = await auth_headers(session, manager)

    own = await client.get("/api/fulfilments", headers=farmer_headers)
    coop = await client.get(
        f"/api/fulfilments?cooperative_id={cooperative.id}", headers=manager_headers
    )
    [mine] = own.json()["items"]
    [theirs] = coop.json()["items"]
    refused = await client.post(
        f"/api/fulfilments/{theirs['fulfilment']['id']}/ship",
        json={"carrier": "GHTK", "tracking_number": "S1"},
        headers=farmer_headers,
    )
    shipped = await client.post(
        f"/api/fulfilments/{mine['fulfilment']['id']}/ship",
        json={"carrier": "GHTK", "tracking_number": "S123456789"},
        headers=farmer_headers,
    )
    coop_shipped = await client.post(
        f"/api/fulfilments/{theirs['fulfilment']['id']}/ship",
        json={"carrier": "Viettel Post", "tracking_number": "VT1"},
        headers=manager_headers,
    )

    assert mine["fulfilment"]["order_id"] == str(order.id)
    assert mine["fulfilment"]["household_id"] == str(household.id)
    assert [line["variant_id"] for line in mine["fulfilment"]["lines"]] == [str(cam.id)]
    assert mine["shipping"]["address"] == SHIPPING_BODY["address"]
    assert theirs["fulfilment"]["cooperative_id"] == str(cooperative.id)
    assert refused.status_code == 404
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["order_status"] == "fulfilling"
    assert coop_shipped.json()["order_status"] == "shipped"


async def test_an_unpaid_order_is_not_shown_to_sellers_yet(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    farmer = await create_user(session, role=Role.FARMER)
    household = await create_household(session, farmer=farmer)
    buyer = await create_user(session, role=Role.BUYER)
    await orders.place_order(
        catalog_order(buyer, await create_variant(session, household=household))
    )

    response = await client.get("/api/fulfilments", headers=await auth_headers(session, farmer))

    assert response.json()["items"] == []


async def test_a_helper_needs_the_households_consent_to_see_its_orders(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    household = await create_household(session)
    helper = await create_user(session, role=Role.HELPER)
    headers = await auth_headers(session, helper)
    url = f"/api/fulfilments?household_id={household.id}"

    before = await client.get(url, headers=headers)
    await grant_consent(session, household, helper, scopes=[ConsentScope.MANAGE_ORDERS])
    after = await client.get(url, headers=headers)

    assert before.status_code == 403
    assert after.status_code == 200


async def test_buyers_and_officials_have_no_fulfilments(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    buyer = await client.get(
        "/api/fulfilments", headers=await auth_headers(session, await create_user(session))
    )

    assert buyer.status_code == 403


async def test_a_comment_buyer_previews_then_claims_the_order_with_its_code(
    session: AsyncSession, client: httpx.AsyncClient, orders: OrderService
) -> None:
    variant = await create_variant(session, available=5)
    order = await orders.place_order(
        PlaceOrder(
            buyer_user_id=None,
            contact_phone="0912345678",
            lines=[LineRequest(variant_id=variant.id, quantity=2)],
            payment_method=None,
            source="livestream_comment",
            buyer_key="facebook:100045",
        )
    )
    code = orders.claim_code(order.id)
    buyer = await create_user(session, role=Role.BUYER)
    headers = await auth_headers(session, buyer)

    preview = await client.get(f"/api/claims/{code}")
    claimed = await client.post(
        f"/api/claims/{code}",
        json={"payment_method": "vietqr", "shipping": SHIPPING_BODY},
        headers=headers,
    )
    again = await client.get(f"/api/claims/{code}")
    mine = await client.get(f"/api/orders/{order.id}", headers=headers)

    assert preview.status_code == 200
    assert preview.json()["contact_phone_masked"] == "0912***678"
    assert "address" not in preview.text
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["payment_method"] == "vietqr"
    assert claimed.json()["payment_code"].startswith("DH")
    assert again.status_code == 404
    assert mine.status_code == 200


async def test_a_wrong_claim_code_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/claims/KHONGCOMA9")

    assert response.status_code == 404
    assert response.json()["code"] == "claim_not_found"
