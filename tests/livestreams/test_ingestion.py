"""Comments become orders: a platform connector delivers each comment once, the public feed
shows it with phone numbers masked, and an order comment holds stock for the commenter."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.livestreams.comments import find_phones
from marketplace.livestreams.events import LiveEventPublisher, host_channel, public_channel
from marketplace.livestreams.live_queue import unknown_codes
from marketplace.livestreams.models import Comment, LiveItem
from marketplace.orders.models import Order, OrderStatus
from tests.livestreams.conftest import ChannelReader
from tests.livestreams.factories import World, caller, comment_body, live_world, pin, post_comment

PHONE = "0912 345 678"


async def _comments(session: AsyncSession, world: World) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Comment).where(Comment.session_id == world.session_id)
        )
        or 0
    )


async def _orders_of(session: AsyncSession, world: World) -> list[Order]:
    result = await session.execute(
        select(Order)
        .where(Order.livestream_session_id == world.session_id)
        .order_by(Order.created_at)
    )
    return list(result.scalars())


async def _left(session: AsyncSession, item: dict[str, Any]) -> int:
    available = await session.scalar(
        select(LiveItem.available).where(LiveItem.id == uuid.UUID(item["id"]))
    )
    assert available is not None
    return available


async def test_an_order_comment_holds_stock_for_the_commenter(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world, code="A1", stock_cap=10, live_price_amount=150_000)

    response = await post_comment(client, world, f"Chốt a1 x2 {PHONE} nha shop", author="fb-7788")

    assert response.status_code == 201, response.text
    body = response.json()
    [entry] = body["entries"]
    assert (body["intent"], entry["code"], entry["quantity"], entry["status"]) == (
        "order",
        "A1",
        2,
        "held",
    )
    assert entry["unit_price_amount"] == 150_000
    assert entry["contact_phone_masked"] == "0912***678"
    assert await _left(session, item) == 8
    [order] = await _orders_of(session, world)
    assert (order.id, order.contact_phone, order.buyer_key) == (
        uuid.UUID(entry["order_id"]),
        "0912345678",
        "facebook:fb-7788",
    )
    assert (order.status, order.total_amount, order.buyer_user_id) == (
        OrderStatus.PENDING_PAYMENT.value,
        300_000,
        None,
    )


async def test_the_same_comment_delivered_twice_creates_nothing_new(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world, code="A1", stock_cap=10)
    body = comment_body(f"chốt A1 {PHONE}")
    headers = {"X-Connector-Token": world.connector_token}
    url = f"/api/livestreams/{world.session_id}/comments"

    first = await client.post(url, json=body, headers=headers)
    second = await client.post(url, json=body, headers=headers)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] is True
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["entries"] == first.json()["entries"]
    assert await _comments(session, world) == 1
    assert len(await _orders_of(session, world)) == 1
    assert await _left(session, item) == 9


async def test_a_connector_needs_the_token_of_this_very_session(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    other = await live_world(client, session)
    url = f"/api/livestreams/{world.session_id}/comments"

    missing = await client.post(url, json=comment_body("chốt A1"))
    foreign = await client.post(
        url, json=comment_body("chốt A1"), headers={"X-Connector-Token": other.connector_token}
    )
    bearer = await client.post(url, json=comment_body("chốt A1"), headers=world.host.headers)

    for response in (missing, foreign, bearer):
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_connector_token"
    assert await _comments(session, world) == 0


async def test_a_new_connector_token_replaces_the_old_one(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    old = world.connector_token
    rotated = await client.post(
        f"/api/host/livestreams/{world.session_id}/connector-token", headers=world.host.headers
    )

    stale = await client.post(
        f"/api/livestreams/{world.session_id}/comments",
        json=comment_body("hello"),
        headers={"X-Connector-Token": old},
    )

    assert rotated.json()["token"] != old
    assert stale.status_code == 401


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"text": ""}, "text", id="empty"),
        pytest.param({"text": "   \n  "}, "text", id="only-whitespace"),
        pytest.param({"text": "chốt A1 " + "a" * 4_992}, "text", id="5000-characters"),
        pytest.param({"text": "chốt A1\x00 0912345678"}, "text", id="nul-byte"),
        pytest.param({"text": "chốt \x1b[2J A1"}, "text", id="escape-sequence"),
        pytest.param({"text": "chốt\u2028A1"}, "text", id="line-separator"),
        pytest.param({"author_display_name": ""}, "author_display_name", id="nameless"),
        pytest.param({"author_display_name": "Bích\x07"}, "author_display_name", id="bell-in-name"),
        pytest.param({"platform": "tiktok"}, "platform", id="another-platform"),
        pytest.param({"platform": "myspace"}, "platform", id="unknown-platform"),
        pytest.param({"commented_at": "2026-11-23T10:00:00"}, "commented_at", id="no-time-zone"),
        pytest.param({"external_id": " c-1"}, "external_id", id="padded-external-id"),
    ],
)
async def test_bad_comments_are_problems_and_store_nothing(
    client: httpx.AsyncClient, session: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    world = await live_world(client, session)
    item = await pin(client, world, code="A1", stock_cap=10)
    body = comment_body("placeholder")
    body.update(changes)

    response = await client.post(
        f"/api/livestreams/{world.session_id}/comments",
        json=body,
        headers={"X-Connector-Token": world.connector_token},
    )

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.json()["errors"][0]["field"]
    assert await _comments(session, world) == 0
    assert await _left(session, item) == 10


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"chốt A1 😍😍🍊 {PHONE}", id="emoji"),
        pytest.param(f"Chốt A1 谢谢 спасибо ขอบคุณ {PHONE}", id="mixed-scripts"),
        pytest.param(f"CHỐT\tA1\n{PHONE}", id="tab-and-newline"),
    ],
)
async def test_emoji_and_other_scripts_are_ordinary_comments(
    client: httpx.AsyncClient, session: AsyncSession, text: str
) -> None:
    world = await live_world(client, session)
    await pin(client, world, code="A1", stock_cap=10)

    response = await post_comment(client, world, text)

    assert response.status_code == 201, response.text
    assert [e["status"] for e in response.json()["entries"]] == ["held"]


async def test_the_public_feed_masks_every_phone_and_shortens_names(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    await pin(client, world, code="A1", stock_cap=10)
    await post_comment(client, world, "sdt mình +84 912 345 678 nha", name="Nguyễn Văn An")
    await post_comment(client, world, "lấy A1 gọi 0983.111.222 hoặc 012 345 678", name="Hồng")
    await post_comment(client, world, "A1 còn không shop?")

    feed = (await client.get(f"/api/livestreams/{world.session_id}/comments")).json()
    page = (
        await client.get(
            f"/api/livestreams/{world.session_id}/comments",
            params={"after": feed["items"][0]["seq"], "limit": 1},
        )
    ).json()

    texts = [c["text"] for c in feed["items"]]
    assert texts == [
        "sdt mình 0912***678 nha",
        "lấy A1 gọi 0983***222 hoặc 0123***678",
        "A1 còn không shop?",
    ]
    assert [c["author"] for c in feed["items"]][:2] == ["N. V. An", "H."]
    assert [c["intent"] for c in feed["items"]] == ["none", "order", "none"]
    assert [find_phones(text) for text in texts] == [[], [], []]
    assert [c["text"] for c in page["items"]] == [texts[1]]


async def test_the_phone_may_come_from_an_earlier_comment_of_the_same_author(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    await pin(client, world, code="A1", stock_cap=10)
    await post_comment(client, world, "sđt 0983 111 222", author="fb-42")

    response = await post_comment(client, world, "chốt A1", author="fb-42")
    someone_else = await post_comment(client, world, "chốt A1", author="fb-43")

    assert [e["status"] for e in response.json()["entries"]] == ["held"]
    assert [(e["status"], e["reason"] != "") for e in someone_else.json()["entries"]] == [
        ("needs_phone", True)
    ]


async def test_failed_orders_are_answered_in_the_queue_with_the_reason(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    await pin(client, world, code="A1", stock_cap=3, per_buyer_limit=2)

    over_limit = await post_comment(client, world, f"chốt A1 x3 {PHONE}", author="fb-1")
    unknown = await post_comment(client, world, f"chốt Z9 {PHONE}", author="fb-1")
    mistyped = await post_comment(client, world, f"chốt A10 sl 2 {PHONE}", author="fb-1")
    first = await post_comment(client, world, f"chốt A1 x2 {PHONE}", author="fb-2")
    sold_out = await post_comment(client, world, f"chốt A1 x2 {PHONE}", author="fb-3")
    question = await post_comment(client, world, "A1 còn không shop?", author="fb-4")

    def outcome(response: httpx.Response) -> list[tuple[str, str]]:
        assert response.status_code == 201, response.text
        return [(e["code"], e["status"]) for e in response.json()["entries"]]

    assert outcome(over_limit) == [("A1", "limit_reached")]
    assert outcome(unknown) == [("Z9", "unknown_code")]
    assert outcome(mistyped) == [("A10", "unknown_code")]
    assert outcome(first) == [("A1", "held")]
    assert outcome(sold_out) == [("A1", "sold_out")]
    assert "1 left" in sold_out.json()["entries"][0]["reason"]
    assert outcome(question) == []
    assert len(await _orders_of(session, world)) == 1


async def test_a_cancel_comment_releases_the_commenters_held_items_for_that_code(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    a1 = await pin(client, world, code="A1", stock_cap=10)
    b1 = await pin(client, world, code="B1", stock_cap=10)
    held = await post_comment(client, world, f"chốt A1 x2, B1 x1 {PHONE}", author="fb-9")
    await post_comment(client, world, f"chốt A1 x3 {PHONE}", author="fb-10")

    cancelled = await post_comment(client, world, "huỷ A1 nha shop", author="fb-9")
    nothing = await post_comment(client, world, "hủy B1", author="fb-11")

    assert [e["status"] for e in held.json()["entries"]] == ["held", "held"]
    assert [(e["code"], e["status"]) for e in cancelled.json()["entries"]] == [("A1", "released")]
    assert [e["status"] for e in nothing.json()["entries"]] == ["nothing_to_cancel"]
    assert await _left(session, a1) == 7
    assert await _left(session, b1) == 9
    statuses = sorted(o.status for o in await _orders_of(session, world))
    assert statuses == ["cancelled", "pending_payment", "pending_payment"]
    queue = (
        await client.get(
            f"/api/host/livestreams/{world.session_id}/queue", headers=world.host.headers
        )
    ).json()
    assert [(e["code"], e["status"]) for e in queue["items"][:2]] == [
        ("A1", "cancelled"),
        ("B1", "held"),
    ]


async def test_comments_before_the_session_is_live_are_kept_but_order_nothing(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session, go_live=False)
    item = await pin(client, world, code="A1", stock_cap=10)

    response = await post_comment(client, world, f"chốt A1 {PHONE}")

    assert [e["status"] for e in response.json()["entries"]] == ["session_not_live"]
    assert await _comments(session, world) == 1
    assert await _left(session, item) == 10


async def test_an_accepted_order_is_announced_with_a_short_name_and_no_phone(
    client: httpx.AsyncClient, session: AsyncSession, redis_url: str, events: LiveEventPublisher
) -> None:
    world = await live_world(client, session)
    await pin(client, world, code="A1", stock_cap=10)
    await events.drain()

    async with (
        ChannelReader(redis_url, public_channel(world.session_id)) as public,
        ChannelReader(redis_url, host_channel(world.session_id)) as host,
    ):
        await post_comment(client, world, f"chốt A1 x2 {PHONE}", name="Nguyễn Thị Mai")
        await events.drain()
        received = await public.read(2)
        for_host = await host.read(2)

    by_type = {e["type"]: e["data"] for e in received}
    assert set(by_type) == {"stock_left", "order_accepted"}
    assert by_type["order_accepted"] == {"code": "A1", "quantity": 2, "buyer": "N. T. Mai"}
    assert by_type["stock_left"]["stock"] == "<10"
    assert "available" not in by_type["stock_left"]
    assert {e["type"]: e["data"] for e in for_host}["stock_left"]["available"] == 8
    everything = str(received) + str(for_host)
    assert "0912" not in everything
    assert "345" not in everything


async def test_a_comment_id_already_used_in_another_session_is_a_conflict(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    world = await live_world(client, session)
    other = await live_world(client, session, host=await caller(session, Role.HOST))
    body = comment_body("xin chào")

    first = await client.post(
        f"/api/livestreams/{world.session_id}/comments",
        json=body,
        headers={"X-Connector-Token": world.connector_token},
    )
    second = await client.post(
        f"/api/livestreams/{other.session_id}/comments",
        json=body,
        headers={"X-Connector-Token": other.connector_token},
    )

    assert first.status_code == 201
    assert (second.status_code, second.json()["code"]) == (409, "comment_in_other_session")


@pytest.mark.parametrize(
    ("text", "unknown"),
    [
        pytest.param("chốt Z9", [("Z9", 1)], id="unknown-code"),
        pytest.param("chốt B20 x2", [("B20", 2)], id="near-a-known-code"),
        pytest.param("chốt A1 x2", [], id="known-code-only"),
        pytest.param("chốt A1 sl2 giao Q7", [], id="markers-and-districts"),
        pytest.param("Z9 còn không shop?", [], id="a-question"),
        pytest.param("chốt ABCDEFGH12", [], id="too-long-for-a-code"),
        pytest.param(
            "chốt " + " ".join(f"Z{n}" for n in range(1, 30)),
            [(f"Z{n}", 1) for n in range(1, 11)],
            id="capped",
        ),
    ],
)
def test_order_comments_naming_codes_the_session_lacks_are_found(
    text: str, unknown: list[tuple[str, int]]
) -> None:
    assert unknown_codes(text, ["A1", "B2"]) == unknown
