"""The report after a session: orders, revenue of paid orders, when items sold out, how many
order comments became paid, revenue by household."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.models import Role
from marketplace.orders.service import OrderService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.catalog.factories import create_product
from tests.livestreams.factories import caller, first_variant, live_world, pin, post_comment
from tests.support.jobs import RecordingSender


async def test_the_report_counts_paid_orders_sell_outs_and_revenue_by_household(
    client: httpx.AsyncClient,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Redis,
) -> None:
    world = await live_world(client, session)
    pomelo = await create_product(
        session, household=world.household, variants=[("quả 1,5 kg", 95_000, 10)]
    )
    await pin(client, world, code="A1", stock_cap=2, live_price_amount=150_000)
    await pin(
        client,
        world,
        code="B1",
        stock_cap=5,
        live_price_amount=90_000,
        variant=await first_variant(session, pomelo),
    )
    paid = await post_comment(client, world, "chốt A1 x2 0912 345 678", author="fb-1")
    await post_comment(client, world, "chốt B1 0983 111 222", author="fb-2")
    await post_comment(client, world, "chốt A1 0905 123 456", author="fb-3")
    await post_comment(client, world, "đẹp quá", author="fb-4")
    order_id = uuid.UUID(paid.json()["entries"][0]["order_id"])
    async with UnitOfWork(sessionmaker, RecordingSender()) as uow:
        await OrderService(uow, settings, redis).mark_paid(order_id, paid_at=datetime.now(UTC))
        await uow.commit()

    response = await client.get(
        f"/api/host/livestreams/{world.session_id}/report", headers=world.host.headers
    )
    other_host = await caller(session, Role.HOST)
    refused = await client.get(
        f"/api/host/livestreams/{world.session_id}/report", headers=other_host.headers
    )

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["comments"], report["order_comments"]) == (4, 3)
    assert (report["orders_placed"], report["orders_paid"]) == (2, 1)
    assert report["revenue_amount"] == 300_000
    assert report["comment_to_paid_conversion"] == round(1 / 3, 4)
    assert report["queue_outcomes"] == {"held": 2, "sold_out": 1}
    by_code = {item["code"]: item for item in report["items"]}
    assert by_code["A1"]["sold_out_at"] is not None
    assert by_code["A1"]["seconds_to_sell_out"] >= 0
    assert (by_code["A1"]["units_paid"], by_code["A1"]["revenue_amount"]) == (2, 300_000)
    assert (by_code["B1"]["units_held_or_sold"], by_code["B1"]["units_paid"]) == (1, 0)
    assert report["revenue_by_seller"] == [
        {
            "household_id": str(world.household.id),
            "cooperative_id": None,
            "revenue_amount": 300_000,
            "units_paid": 2,
        }
    ]
    assert report["orders_data"] == "complete"
    assert refused.status_code == 404
