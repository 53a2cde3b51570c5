"""Group commit (orders/group_commit.py): one-line orders of a pinned item sent at once share
transactions, and each keeps the rules and the exactly-once answer of an order placed alone.

Like test_concurrency.py, the app has its own engine and really commits, so the requests are
concurrent on the database; everything made is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from marketplace.accounts.models import Role, User
from marketplace.app import create_app
from marketplace.catalog.models import Product
from marketplace.livestreams.models import BuyerCount, LiveItem, LiveSession
from marketplace.livestreams.service import ReservationAsk, ReservedItem, serve_asks
from marketplace.orders.group_commit import GroupCommit, group_commit
from marketplace.orders.models import IdempotencyRecord, Order, StockHold
from marketplace.orders.repository import OrderRepository
from marketplace.sellers.models import Household
from marketplace.settings import Settings
from tests.accounts.factories import auth_headers, create_user
from tests.orders.factories import SHIPPING_BODY, create_live_item, create_variant
from tests.support.jobs import RecordingSender

pytestmark = pytest.mark.concurrency


@dataclass
class Live:
    app: Litestar
    client: httpx.AsyncClient
    item: LiveItem
    buyers: list[User]
    headers: list[dict[str, str]]

    @property
    def group(self) -> GroupCommit:
        return group_commit(self.app.state["resources"])

    def body(self, quantity: int = 1, **shipping: str) -> dict[str, Any]:
        return {
            "lines": [{"livestream_item_id": str(self.item.id), "quantity": quantity}],
            "payment_method": "vietqr",
            "shipping": {**SHIPPING_BODY, **shipping},
        }

    async def post(self, buyer: int, key: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            "/api/orders", json=body, headers={**self.headers[buyer], "Idempotency-Key": key}
        )


async def _live(
    engine: AsyncEngine, settings: Settings, redis: Redis, *, units: int, limit: int, buyers: int
) -> AsyncIterator[Live]:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        variant = await create_variant(session, available=0)
        item = await create_live_item(session, variant, stock_cap=units, per_buyer_limit=limit)
        users = [await create_user(session, role=Role.BUYER) for _ in range(buyers)]
        await session.commit()
        headers = [await auth_headers(session, user) for user in users]
        await session.commit()
    database = replace(settings.database, pool_size=20, max_overflow=10)
    app = create_app(
        settings.with_overrides(database=database),
        redis=redis,
        job_sender=RecordingSender(),
        skip_logging_setup=True,
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60
        ) as client,
    ):
        yield Live(app=app, client=client, item=item, buyers=users, headers=headers)
    async with AsyncSession(engine) as session:
        ids = [user.id for user in users]
        await session.execute(delete(Order).where(Order.buyer_user_id.in_(ids)))
        await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.scope.in_([f"user:{i}" for i in ids]))
        )
        host = await session.scalar(
            select(LiveSession.host_user_id).where(LiveSession.id == item.session_id)
        )
        household = await session.scalar(
            select(Product.household_id).where(Product.id == variant.product_id)
        )
        await session.execute(delete(LiveSession).where(LiveSession.id == item.session_id))
        await session.execute(delete(Product).where(Product.id == variant.product_id))
        await session.execute(delete(Household).where(Household.id == household))
        await session.execute(delete(User).where(User.id.in_([*ids, host])))
        await session.commit()


@pytest.fixture
async def live(engine: AsyncEngine, settings: Settings, redis: Redis) -> AsyncIterator[Live]:
    async for made in _live(engine, settings, redis, units=5, limit=1, buyers=12):
        yield made


@pytest.fixture
async def crowd(engine: AsyncEngine, settings: Settings, redis: Redis) -> AsyncIterator[Live]:
    async for made in _live(engine, settings, redis, units=60, limit=2, buyers=120):
        yield made


async def _state(engine: AsyncEngine, item: LiveItem) -> tuple[int, int, int, int]:
    """Units left, units held by orders, units counted for buyers, idempotency records."""
    async with AsyncSession(engine) as session:
        left = await session.scalar(select(LiveItem.available).where(LiveItem.id == item.id))
        held = await session.scalar(
            select(func.coalesce(func.sum(StockHold.quantity), 0)).where(
                StockHold.livestream_item_id == item.id
            )
        )
        counted = await session.scalar(
            select(func.coalesce(func.sum(BuyerCount.quantity), 0)).where(
                BuyerCount.item_id == item.id
            )
        )
        records = await session.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .join(Order, Order.id == IdempotencyRecord.order_id)
            .join(StockHold, StockHold.order_id == Order.id)
            .where(StockHold.livestream_item_id == item.id)
        )
    return int(left or 0), int(held or 0), int(counted or 0), int(records or 0)


async def test_one_key_sent_twenty_times_at_once_makes_one_order(
    live: Live, engine: AsyncEngine
) -> None:
    body = live.body()
    responses = await asyncio.gather(*(live.post(0, "same-key", body) for _ in range(20)))

    assert {r.status_code for r in responses} == {201}, [r.text for r in responses[:2]]
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") != "true" for r in responses) == 1
    assert await _state(engine, live.item) == (4, 1, 1, 1)


async def test_a_shared_batch_answers_each_order_by_its_own_rules(
    live: Live, engine: AsyncEngine
) -> None:
    # Buyer 0 asks twice (limit 1); buyer 1 gives a phone that is not a mobile number;
    # buyers 2..11 ask for one each: 5 units for 11 valid asks.
    calls = [
        live.post(0, "a", live.body()),
        live.post(0, "b", live.body()),
        live.post(1, "c", live.body(phone="0212345678")),
        *(live.post(n, f"k{n}", live.body()) for n in range(2, 12)),
    ]
    responses = await asyncio.gather(*calls)

    codes = Counter(r.json().get("code", "created") for r in responses)
    assert codes["created"] == 5
    assert codes["invalid_order"] == 1
    assert codes["limit_reached"] + codes["sold_out"] == 7
    assert responses[2].json()["errors"][0]["field"] == "shipping.phone"
    refused = [r for r in responses if r.status_code == 409]
    assert {r.json()["field"] for r in refused} == {"lines[0].livestream_item_id"}
    assert await _state(engine, live.item) == (0, 5, 5, 5)
    assert live.group.batches < len(calls)

    # Every answer, refusals included, is the answer for its key from now on.
    again = await asyncio.gather(
        live.post(0, "a", live.body()),
        live.post(0, "b", live.body()),
        live.post(1, "c", live.body(phone="0212345678")),
    )
    for first, second in zip(responses[:3], again, strict=True):
        assert (second.status_code, second.json()) == (first.status_code, first.json())
        assert second.headers["Idempotent-Replayed"] == "true"
    reused = await live.post(0, "a", live.body(quantity=2))
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    assert await _state(engine, live.item) == (0, 5, 5, 5)


async def test_a_crowd_shares_commits_and_never_oversells(crowd: Live, engine: AsyncEngine) -> None:
    # 120 buyers, limit 2, each sends two orders of one unit at once: 240 asks, 60 units.
    responses = await asyncio.gather(
        *(crowd.post(n, f"{n}-{i}", crowd.body()) for n in range(120) for i in range(2))
    )

    accepted = [r for r in responses if r.status_code == 201]
    assert {r.status_code for r in responses} <= {201, 409}
    assert len(accepted) == 60
    assert await _state(engine, crowd.item) == (0, 60, 60, 60)
    async with AsyncSession(engine) as session:
        per_buyer = dict(
            (
                await session.execute(
                    select(StockHold.buyer_key, func.sum(StockHold.quantity))
                    .where(StockHold.livestream_item_id == crowd.item.id)
                    .group_by(StockHold.buyer_key)
                )
            ).all()
        )
        assert len(per_buyer) >= 30
        assert max(per_buyer.values()) <= 2
        ids = set(
            (
                await session.execute(
                    select(Order.id).where(Order.buyer_user_id.in_([b.id for b in crowd.buyers]))
                )
            ).scalars()
        )
    assert ids == {uuid.UUID(r.json()["id"]) for r in accepted}
    # Shared commits: far fewer transactions than orders.
    assert crowd.group.batches <= len(responses) // 4, crowd.group.batches


async def test_a_failed_batch_writes_nothing_and_its_keys_stay_free(
    live: Live, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = OrderRepository.add_many

    async def fail_after_insert(self: OrderRepository, *args: Any, **kwargs: Any) -> int:
        await original(self, *args, **kwargs)
        raise RuntimeError("the database went away mid-batch")

    monkeypatch.setattr(OrderRepository, "add_many", fail_after_insert)
    failed = await asyncio.gather(*(live.post(n, f"f{n}", live.body()) for n in range(3)))
    assert {r.status_code for r in failed} == {500}
    assert {r.headers["content-type"] for r in failed} == {"application/problem+json"}
    assert await _state(engine, live.item) == (5, 0, 0, 0)

    monkeypatch.setattr(OrderRepository, "add_many", original)
    retried = await asyncio.gather(*(live.post(n, f"f{n}", live.body()) for n in range(3)))
    assert {r.status_code for r in retried} == {201}
    assert not any(r.headers.get("Idempotent-Replayed") for r in retried)
    assert await _state(engine, live.item) == (2, 3, 3, 3)


async def _record_count(engine: AsyncEngine, buyer: User, key: str) -> int:
    async with AsyncSession(engine) as session:
        found = await session.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(IdempotencyRecord.scope == f"user:{buyer.id}", IdempotencyRecord.key == key)
        )
    return int(found or 0)


async def test_after_a_sell_out_refusals_store_nothing_and_answered_keys_replay(
    live: Live, engine: AsyncEngine, redis: Redis
) -> None:
    sold = await asyncio.gather(*(live.post(n, f"s{n}", live.body()) for n in range(6)))
    assert Counter(r.status_code for r in sold) == {201: 5, 409: 1}
    flag = f"mp:livestream:item:{live.item.id}:sold_out"
    # The flag goes up after the commit, from a background task (the publisher's), so it
    # may trail the answers by a moment; the flood below needs it up.
    for _ in range(200):
        if await redis.exists(flag):
            break
        await asyncio.sleep(0.01)
    assert await redis.exists(flag)

    # The flood after the sale: one read per batch, no claim and no answer written.
    late = await asyncio.gather(*(live.post(n, f"late{n}", live.body()) for n in range(6, 12)))
    assert {(r.status_code, r.json()["code"]) for r in late} == {(409, "sold_out")}
    assert {r.json()["field"] for r in late} == {"lines[0].livestream_item_id"}
    assert not any(r.headers.get("Idempotent-Replayed") for r in late)
    assert [await _record_count(engine, live.buyers[n], f"late{n}") for n in range(6, 12)] == [
        0
    ] * 6

    # Keys answered before the flag replay their first answer, the accepted orders included.
    again = await asyncio.gather(*(live.post(n, f"s{n}", live.body()) for n in range(6)))
    for first, second in zip(sold, again, strict=True):
        assert (second.status_code, second.json()) == (first.status_code, first.json())
        assert second.headers["Idempotent-Replayed"] == "true"
    reused = await live.post(0, "s0", live.body(quantity=2))
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")

    # Without the flag (expired, or Redis lost it) the database decides and the answer is kept.
    await redis.delete(flag)
    decided = await live.post(7, "decided", live.body())
    assert (decided.status_code, decided.json()["code"]) == (409, "sold_out")
    assert await _record_count(engine, live.buyers[7], "decided") == 1
    assert await _state(engine, live.item) == (0, 5, 5, 5)


# ---- The rules of a batch, in memory --------------------------------------------------------

RESERVED = ReservedItem(
    item_id=uuid.uuid4(),
    variant_id=uuid.uuid4(),
    product_id=uuid.uuid4(),
    unit_price_amount=150_000,
    hold_seconds=600,
    session_id=uuid.uuid4(),
    code="A1",
)


@given(
    asks=st.lists(
        st.tuples(st.sampled_from("abcdef"), st.integers(min_value=0, max_value=4)), max_size=40
    ),
    held=st.dictionaries(st.sampled_from("abcdef"), st.integers(min_value=0, max_value=3)),
    available=st.integers(min_value=0, max_value=30),
    limit=st.integers(min_value=1, max_value=4),
)
def test_serve_asks_takes_in_order_within_stock_and_limits(
    asks: list[tuple[str, int]], held: dict[str, int], available: int, limit: int
) -> None:
    answers, changed, left = serve_asks(
        [ReservationAsk(buyer, quantity) for buyer, quantity in asks],
        held,
        available,
        limit,
        RESERVED,
    )

    taken: Counter[str] = Counter()
    remaining = available
    for (buyer, quantity), answer in zip(asks, answers, strict=True):
        before = held.get(buyer, 0) + taken[buyer]
        if answer is RESERVED:
            assert 1 <= quantity <= remaining
            assert before + quantity <= limit
            taken[buyer] += quantity
            remaining -= quantity
        elif quantity >= 1 and before + quantity <= limit:
            # Refused for stock only when this ask did not fit what was left at its turn.
            assert answer.code == "sold_out"
            assert quantity > remaining
    assert left == remaining == available - sum(taken.values())
    assert changed == {buyer: held.get(buyer, 0) + n for buyer, n in taken.items()}
