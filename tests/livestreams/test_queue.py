"""The host's live queue: every code of every order or cancel comment, in arrival order,
with its outcome; the host edits, accepts or rejects an order by hand."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.livestreams.models import LiveItem
from marketplace.orders.models import Order
from tests.livestreams.factories import World, caller, live_world, pin, post_comment

PHONE = "0912 345 678"


def _queue_url(world: World) -> str:
    return f"/api/host/livestreams/{world.session_id}/queue"


async def _queue(client: httpx.AsyncClient, world: World, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(_queue_url(world), params=params, headers=world.host.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _left(session: AsyncSession, item: dict[str, Any]) -> int:
    available = await session.scalar(
        select(LiveItem.available).where(LiveItem.id == uuid.UUID(item["id"]))
    )
    assert available is not None
    return available


async def test_the_queue_lists_every_parsed_order_in_arrival_order(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    await pin(client, world, code="A1", stock_cap=10)
    await pin(client, world, code="B1", stock_cap=10)
    await post_comment(client, world, f"lấy 2 B1 với A1 {PHONE}", author="fb-1")
    await post_comment(client, world, "đẹp quá shop ơi", author="fb-2")
    await post_comment(client, world, "chốt A1", author="fb-3")

    queue = await _queue(client, world)
    waiting = await _queue(client, world, status="needs_phone")

    assert [(e["code"], e["quantity"], e["status"]) for e in queue] == [
        ("B1", 2, "held"),
        ("A1", 1, "held"),
        ("A1", 1, "needs_phone"),
    ]
    assert [e["comment_text"] for e in waiting] == ["chốt A1"]


async def test_another_host_cannot_read_my_queue(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    other = await caller(session, Role.HOST)

    response = await client.get(_queue_url(world), headers=other.headers)

    assert (response.status_code, response.json()["code"]) == (404, "session_not_found")


async def test_the_host_adds_the_phone_and_accepts_the_order(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world, code="A1", stock_cap=10)
    [entry] = (await post_comment(client, world, "chốt A1 x2")).json()["entries"]

    edited = await client.patch(
        f"{_queue_url(world)}/{entry['id']}",
        json={"phone": "+84 983 111 222"},
        headers=world.host.headers,
    )
    accepted = await client.post(
        f"{_queue_url(world)}/{entry['id']}/accept", headers=world.host.headers
    )

    assert edited.status_code == 200, edited.text
    assert edited.json()["contact_phone_masked"] == "0983***222"
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "held"
    assert accepted.json()["handled_at"] is not None
    assert await _left(session, item) == 8
    order = await session.get(Order, uuid.UUID(accepted.json()["order_id"]))
    assert order is not None
    assert order.contact_phone == "0983111222"


async def test_the_host_corrects_a_mistyped_code_and_accepts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world, code="CAM1", stock_cap=10)
    [entry] = (await post_comment(client, world, f"chốt CAM11 x3 {PHONE}")).json()["entries"]

    bad = await client.patch(
        f"{_queue_url(world)}/{entry['id']}", json={"code": "CAM9"}, headers=world.host.headers
    )
    fixed = await client.patch(
        f"{_queue_url(world)}/{entry['id']}",
        json={"code": "cam1", "quantity": 2},
        headers=world.host.headers,
    )
    accepted = await client.post(
        f"{_queue_url(world)}/{entry['id']}/accept", headers=world.host.headers
    )

    assert entry["status"] == "unknown_code"
    assert bad.status_code == 422
    assert (fixed.json()["code"], fixed.json()["quantity"]) == ("CAM1", 2)
    assert accepted.json()["status"] == "held"
    assert await _left(session, item) == 8


async def test_rejecting_a_held_order_cancels_it_and_returns_the_stock(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world, code="A1", stock_cap=10)
    [entry] = (await post_comment(client, world, f"chốt A1 x4 {PHONE}")).json()["entries"]
    assert await _left(session, item) == 6

    rejected = await client.post(
        f"{_queue_url(world)}/{entry['id']}/reject", headers=world.host.headers
    )
    again = await client.post(
        f"{_queue_url(world)}/{entry['id']}/reject", headers=world.host.headers
    )

    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert await _left(session, item) == 10
    order = await session.get(Order, uuid.UUID(entry["order_id"]))
    assert order is not None
    await session.refresh(order)
    assert order.status == "cancelled"
    assert (again.status_code, again.json()["code"]) == (409, "queue_entry_not_actionable")


async def test_a_held_order_cannot_be_accepted_or_edited_again(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    await pin(client, world, code="A1", stock_cap=10)
    [entry] = (await post_comment(client, world, f"chốt A1 {PHONE}")).json()["entries"]

    accept = await client.post(
        f"{_queue_url(world)}/{entry['id']}/accept", headers=world.host.headers
    )
    edit = await client.patch(
        f"{_queue_url(world)}/{entry['id']}", json={"quantity": 3}, headers=world.host.headers
    )

    assert (accept.status_code, accept.json()["code"]) == (409, "queue_entry_not_actionable")
    assert (edit.status_code, edit.json()["code"]) == (409, "queue_entry_not_actionable")


async def test_a_failed_entry_can_be_dismissed(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    await pin(client, world, code="A1", stock_cap=10)
    [entry] = (await post_comment(client, world, f"chốt B7 {PHONE}")).json()["entries"]

    rejected = await client.post(
        f"{_queue_url(world)}/{entry['id']}/reject", headers=world.host.headers
    )

    assert entry["status"] == "unknown_code"
    assert rejected.json()["status"] == "rejected"


async def test_an_entry_of_another_session_is_not_found(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    mine = await live_world(client, session, host=world.host)
    await pin(client, world, code="A1", stock_cap=10)
    [entry] = (await post_comment(client, world, "chốt A1")).json()["entries"]

    response = await client.post(
        f"{_queue_url(mine)}/{entry['id']}/accept", headers=world.host.headers
    )

    assert (response.status_code, response.json()["code"]) == (404, "queue_entry_not_found")
