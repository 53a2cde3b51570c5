"""POST /api/orders and friends over HTTP: idempotency, bad input, who sees what."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.catalog.models import Variant
from marketplace.db import utcnow
from marketplace.orders.models import IdempotencyRecord, Order
from marketplace.orders.placement import request_fingerprint
from marketplace.orders.schemas import OrderCreate
from tests.accounts.factories import auth_headers, create_user
from tests.orders.factories import create_variant, order_body


async def buyer_headers(session: AsyncSession, role: Role = Role.BUYER) -> dict[str, str]:
    return await auth_headers(session, await create_user(session, role=role))


def keyed(headers: dict[str, str], key: str | None = None) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key or uuid.uuid4().hex}


async def orders_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


async def stock(session: AsyncSession, variant: Variant) -> int:
    value = await session.scalar(select(Variant.available).where(Variant.id == variant.id))
    assert value is not None
    return value


async def test_a_buyer_places_an_order_and_gets_it_back_with_prices_from_the_catalog(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = await buyer_headers(session)
    variant = await create_variant(session, price_amount=180_000, available=10)

    response = await client.post(
        "/api/orders", json=order_body(variant, quantity=2), headers=keyed(headers)
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending_payment"
    assert body["total_amount"] == 360_000
    assert body["amount_due"] == 360_000
    assert body["payment_code"].startswith("DH")
    assert body["shipping"]["phone"] == "0912345678"
    [fulfilment] = body["fulfilments"]
    assert fulfilment["lines"][0]["unit_price_amount"] == 180_000
    assert await stock(session, variant) == 8


async def test_the_same_key_and_body_replays_the_first_answer_and_makes_one_order(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = keyed(await buyer_headers(session))
    variant = await create_variant(session, available=10)
    before = await orders_count(session)

    first = await client.post("/api/orders", json=order_body(variant), headers=headers)
    second = await client.post("/api/orders", json=order_body(variant), headers=headers)

    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["Idempotent-Replayed"] == "true"
    assert await orders_count(session) == before + 1
    assert await stock(session, variant) == 9


async def test_the_same_key_with_another_body_is_refused_and_changes_nothing(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = keyed(await buyer_headers(session))
    variant = await create_variant(session, available=10)
    await client.post("/api/orders", json=order_body(variant), headers=headers)

    response = await client.post(
        "/api/orders", json=order_body(variant, quantity=3), headers=headers
    )

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_key_reused"
    assert await stock(session, variant) == 9


async def test_a_key_is_scoped_to_its_buyer(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    variant = await create_variant(session, available=10)
    key = uuid.uuid4().hex

    first = await client.post(
        "/api/orders", json=order_body(variant), headers=keyed(await buyer_headers(session), key)
    )
    second = await client.post(
        "/api/orders", json=order_body(variant), headers=keyed(await buyer_headers(session), key)
    )

    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


async def test_a_request_still_in_flight_with_the_same_key_gets_request_in_progress(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    headers = keyed(await auth_headers(session, buyer), "dang-xu-ly-1")
    variant = await create_variant(session, available=10)
    body = order_body(variant)
    # The first request's claim, as it looks while that request runs.
    fingerprint = request_fingerprint("POST", "/api/orders", _canonical(body))
    now = utcnow()
    session.add(
        IdempotencyRecord(
            scope=f"user:{buyer.id}",
            key="dang-xu-ly-1",
            fingerprint=fingerprint,
            status="in_flight",
            locked_until=now + timedelta(seconds=60),
            expires_at=now + timedelta(hours=24),
        )
    )
    await session.flush()

    response = await client.post("/api/orders", json=body, headers=headers)

    assert response.status_code == 409
    assert response.json()["code"] == "request_in_progress"
    assert await stock(session, variant) == 10


async def test_a_claim_left_by_a_crashed_request_is_taken_over_after_its_lease(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    buyer = await create_user(session, role=Role.BUYER)
    headers = keyed(await auth_headers(session, buyer), "bi-treo-1")
    variant = await create_variant(session, available=10)
    now = utcnow()
    session.add(
        IdempotencyRecord(
            scope=f"user:{buyer.id}",
            key="bi-treo-1",
            fingerprint="0" * 64,
            status="in_flight",
            locked_until=now - timedelta(seconds=1),
            expires_at=now + timedelta(hours=24),
        )
    )
    await session.flush()

    response = await client.post("/api/orders", json=order_body(variant), headers=headers)

    assert response.status_code == 201
    assert await stock(session, variant) == 9


async def test_a_refusal_is_replayed_too_with_the_same_body(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = keyed(await buyer_headers(session))
    variant = await create_variant(session, available=1)

    first = await client.post("/api/orders", json=order_body(variant, quantity=2), headers=headers)
    second = await client.post("/api/orders", json=order_body(variant, quantity=2), headers=headers)

    assert first.status_code == 409
    assert first.json()["code"] == "sold_out"
    assert first.json()["field"] == "lines[0].variant_id"
    assert second.status_code == 409
    assert second.content == first.content
    assert await stock(session, variant) == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [(None, "required"), ("", "required"), ("k" * 256, "at most"), ("khóa-đơn", "ASCII")],
    ids=["missing", "empty", "too-long", "not-ascii"],
)
async def test_a_missing_or_malformed_idempotency_key_is_refused_and_places_nothing(
    session: AsyncSession, client: httpx.AsyncClient, key: str | None, message: str
) -> None:
    headers = await buyer_headers(session)
    variant = await create_variant(session, available=10)
    sent: dict[str, str | bytes] = dict(headers)
    if key is not None:
        sent["Idempotency-Key"] = key.encode()

    response = await client.post(
        "/api/orders",
        content=httpx.Request("POST", "/", json=order_body(variant)).content,
        headers={**sent, "content-type": "application/json"},
    )

    assert response.status_code == 400
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "idempotency_key_required"
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert message in problem["detail"]
    assert await stock(session, variant) == 10


def _price_in_line(body: dict[str, Any]) -> None:
    body["lines"][0]["unit_price_amount"] = 1_000


def _price_on_order(body: dict[str, Any]) -> None:
    body["total_amount"] = 1_000


def _zero_quantity(body: dict[str, Any]) -> None:
    body["lines"][0]["quantity"] = 0


def _too_many(body: dict[str, Any]) -> None:
    body["lines"][0]["quantity"] = 101


def _empty_cart(body: dict[str, Any]) -> None:
    body["lines"] = []


def _unknown_variant(body: dict[str, Any]) -> None:
    body["lines"][0]["variant_id"] = str(uuid.uuid4())


def _no_item(body: dict[str, Any]) -> None:
    del body["lines"][0]["variant_id"]


def _bad_phone(body: dict[str, Any]) -> None:
    body["shipping"]["phone"] = "0123 456 789"


def _bad_method(body: dict[str, Any]) -> None:
    body["payment_method"] = "bitcoin"


@pytest.mark.parametrize(
    ("spoil", "field"),
    [
        (_price_in_line, "lines[0]"),
        (_price_on_order, "total_amount"),
        (_zero_quantity, "lines[0].quantity"),
        (_too_many, "lines[0].quantity"),
        (_empty_cart, "lines"),
        (_unknown_variant, "lines[0].variant_id"),
        (_no_item, "lines[0]"),
        (_bad_phone, "shipping.phone"),
        (_bad_method, "payment_method"),
    ],
    ids=[
        "price-on-line",
        "price-on-order",
        "zero-quantity",
        "above-cap",
        "empty-cart",
        "unknown-variant",
        "no-item",
        "bad-phone",
        "bad-method",
    ],
)
async def test_bad_input_gets_a_problem_naming_the_field_and_changes_nothing(
    session: AsyncSession,
    client: httpx.AsyncClient,
    spoil: Any,
    field: str,
) -> None:
    headers = keyed(await buyer_headers(session))
    variant = await create_variant(session, available=10)
    body = order_body(variant)
    spoil(body)
    before = await orders_count(session)

    response = await client.post("/api/orders", json=body, headers=headers)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    # Unknown fields (a price) are named in the detail; the others in `errors` too.
    assert field in problem["detail"]
    assert any(field in e["field"] or field in e["message"] for e in problem["errors"]), problem
    assert await orders_count(session) == before
    assert await stock(session, variant) == 10


async def test_orders_are_placed_by_buyers_only(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    variant = await create_variant(session)

    anonymous = await client.post(
        "/api/orders", json=order_body(variant), headers={"Idempotency-Key": "a"}
    )
    farmer = await client.post(
        "/api/orders",
        json=order_body(variant),
        headers=keyed(await buyer_headers(session, Role.FARMER)),
    )

    assert anonymous.status_code == 401
    assert farmer.status_code == 403


async def test_a_buyer_sees_their_own_order_and_another_buyer_gets_404(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    owner = await buyer_headers(session)
    stranger = await buyer_headers(session)
    admin = await buyer_headers(session, Role.ADMIN)
    variant = await create_variant(session)
    placed = await client.post("/api/orders", json=order_body(variant), headers=keyed(owner))
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]

    mine = await client.get(f"/api/orders/{order_id}", headers=owner)
    theirs = await client.get(f"/api/orders/{order_id}", headers=stranger)
    as_admin = await client.get(f"/api/orders/{order_id}", headers=admin)
    listed = await client.get("/api/orders", headers=owner)
    others_list = await client.get("/api/orders", headers=stranger)

    assert mine.status_code == 200
    assert mine.json()["id"] == order_id
    assert theirs.status_code == 404
    assert theirs.json()["code"] == "order_not_found"
    assert as_admin.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [order_id]
    assert others_list.json()["items"] == []


async def test_a_buyer_cancels_an_unpaid_order_and_the_stock_returns(
    session: AsyncSession, client: httpx.AsyncClient
) -> None:
    headers = await buyer_headers(session)
    variant = await create_variant(session, available=3)
    placed = await client.post(
        "/api/orders", json=order_body(variant, quantity=3), headers=keyed(headers)
    )

    cancelled = await client.post(f"/api/orders/{placed.json()['id']}/cancel", headers=headers)
    again = await client.post(f"/api/orders/{placed.json()['id']}/cancel", headers=headers)

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert again.status_code == 409
    assert again.json()["code"] == "illegal_transition"
    assert await stock(session, variant) == 3


def _canonical(body: dict[str, Any]) -> bytes:
    """The fingerprint input the server computes: the body re-encoded from its schema."""
    return msgspec.json.encode(msgspec.convert(body, OrderCreate))
