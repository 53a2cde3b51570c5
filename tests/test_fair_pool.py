"""The connection pool serves waiting requests in arrival order, even when a newcomer asks at
the moment a connection comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from marketplace.db import create_engine
from marketplace.fair_pool import FairAsyncQueuePool, HandOffQueue
from marketplace.settings import DatabaseSettings


async def test_an_item_returned_while_someone_waits_goes_to_the_waiter() -> None:
    queue: HandOffQueue[str] = HandOffQueue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)

    queue.put_nowait("connection")
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()

    assert await waiter == "connection"
    assert queue.empty()


async def test_waiters_are_served_first_come_first_served() -> None:
    queue: HandOffQueue[int] = HandOffQueue()
    waiters = []
    for _ in range(3):
        waiters.append(asyncio.create_task(queue.get()))
        await asyncio.sleep(0)

    for item in (1, 2, 3):
        queue.put_nowait(item)

    assert [await w for w in waiters] == [1, 2, 3]


async def test_a_waiter_cancelled_as_it_is_served_passes_the_item_on() -> None:
    queue: HandOffQueue[str] = HandOffQueue()
    first = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)

    queue.put_nowait("connection")
    first.cancel()

    assert await second == "connection"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_full_queue_refuses_more() -> None:
    queue: HandOffQueue[int] = HandOffQueue(maxsize=1)
    queue.put_nowait(1)

    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait(2)
    assert (queue.qsize(), queue.full()) == (1, True)


@pytest.fixture
async def one_connection(test_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(
        test_database_url, pool_size=1, max_overflow=0, poolclass=FairAsyncQueuePool
    )
    yield engine
    await engine.dispose()


async def test_a_request_waiting_for_the_only_connection_gets_it_before_a_newcomer(
    one_connection: AsyncEngine,
) -> None:
    served: list[str] = []
    holder = await one_connection.connect()

    async def request(name: str) -> None:
        async with one_connection.connect() as connection:
            served.append(name)
            await connection.execute(text("SELECT 1"))

    waiting = asyncio.create_task(request("waiting"))
    await asyncio.sleep(0.05)  # it is now queued for the connection
    # The newcomer is scheduled before the connection comes back, so it asks for one before
    # the woken waiter runs: the moment a plain asyncio.Queue lets it take the connection.
    newcomer = asyncio.create_task(request("newcomer"))
    await holder.close()
    await asyncio.gather(waiting, newcomer)

    assert served == ["waiting", "newcomer"]


def test_the_app_engine_uses_the_fair_pool(test_database_url: str) -> None:
    engine = create_engine(DatabaseSettings(url=test_database_url))

    assert isinstance(engine.pool, FairAsyncQueuePool)
