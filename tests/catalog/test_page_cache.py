"""The public pages' few seconds of memory: served until it expires, one computation for
simultaneous misses, errors never kept, old entries evicted first."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.app import create_app
from marketplace.catalog.models import Product, ProductStatus
from marketplace.catalog.page_cache import PageCache
from marketplace.settings import Settings
from media.storage import FilesystemStorage
from tests.catalog.conftest import BASE_URL
from tests.catalog.factories import create_product
from tests.support.jobs import RecordingSender


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_entry_is_served_until_it_expires() -> None:
    ticker = Ticker()
    cache = PageCache(ttl_seconds=5, clock=ticker)
    cache.put("page", b"old")

    ticker.now += 4.9
    fresh = cache.get("page")
    ticker.now += 0.1
    expired = cache.get("page")

    assert (fresh, expired) == (b"old", None)


async def test_simultaneous_misses_compute_once() -> None:
    cache = PageCache()
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return b"page"

    bodies = await asyncio.gather(*(cache.get_or_compute("k", compute) for _ in range(10)))

    assert bodies == [b"page"] * 10
    assert calls == 1


async def test_a_failure_is_not_kept() -> None:
    cache = PageCache()

    async def failing() -> bytes:
        raise ValueError("bad query")

    async def working() -> bytes:
        return b"page"

    with pytest.raises(ValueError, match="bad query"):
        await cache.get_or_compute("k", failing)
    assert await cache.get_or_compute("k", working) == b"page"


def test_the_oldest_entry_goes_first_when_full() -> None:
    cache = PageCache(max_entries=2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    cache.put("c", b"3")

    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, b"2", b"3")


async def test_the_api_serves_a_listing_from_memory_for_a_few_seconds_only(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    fs_storage: FilesystemStorage,
    session: AsyncSession,
) -> None:
    ticker = Ticker()
    app = create_app(
        settings,
        sessionmaker=sessionmaker,
        redis=redis,
        job_sender=RecordingSender(),
        skip_logging_setup=True,
        extras={"storage": fs_storage, "page_cache": PageCache(ttl_seconds=5, clock=ticker)},
    )
    product = await create_product(session, name="Bưởi da xanh")

    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        before = (await client.get("/api/products")).json()
        detail_before = await client.get(f"/api/products/{product.id}")
        await session.execute(
            update(Product)
            .where(Product.id == product.id)
            .values(status=ProductStatus.UNLISTED.value)
        )
        within = (await client.get("/api/products")).json()
        detail_within = await client.get(f"/api/products/{product.id}")
        ticker.now += 5
        after = (await client.get("/api/products")).json()
        detail_after = await client.get(f"/api/products/{product.id}")

    assert [i["name"] for i in before["items"]] == ["Bưởi da xanh"]
    assert within == before
    assert after["items"] == []
    assert (detail_before.status_code, detail_within.status_code) == (200, 200)
    assert detail_after.status_code == 404
    assert detail_before.headers["content-type"] == "application/json"


async def test_while_an_expired_page_is_recomputed_the_others_get_the_expired_copy() -> None:
    ticker = Ticker()
    cache = PageCache(ttl_seconds=5, clock=ticker)
    cache.put("page", b"old")
    ticker.now += 5
    release = asyncio.Event()

    async def slow_new_page() -> bytes:
        await release.wait()
        return b"new"

    async def never_called() -> bytes:
        raise AssertionError("a second computation of the same page")

    recomputing = asyncio.create_task(cache.get_or_compute("page", slow_new_page))
    await asyncio.sleep(0)
    during = await cache.get_or_compute("page", never_called)
    release.set()

    assert (during, await recomputing) == (b"old", b"new")
    assert await cache.get_or_compute("page", never_called) == b"new"


async def test_an_expired_page_is_never_served_when_nobody_recomputes_it() -> None:
    ticker = Ticker()
    cache = PageCache(ttl_seconds=5, clock=ticker)
    cache.put("page", b"old")
    ticker.now += 5

    async def new_page() -> bytes:
        return b"new"

    assert cache.get("page") is None
    assert await cache.get_or_compute("page", new_page) == b"new"
