"""Requests waiting together share a batch (marketplace/batching.py): the mechanism under the
group commit and the shared token lookups, checked on its own."""

from __future__ import annotations

import asyncio

import pytest

from marketplace.batching import WaitingBatches


class Doubling(WaitingBatches[int, int]):
    """Answers each number doubled, recording the batches it was handed."""

    def __init__(self, *, max_batch: int = 100, fail_with: Exception | None = None) -> None:
        super().__init__(max_batch=max_batch, name="doubling")
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail_with = fail_with

    async def handle(self, batch: list[tuple[int, asyncio.Future[int]]]) -> None:
        self.batches.append([item for item, _ in batch])
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        for item, future in batch:
            if not future.done():
                future.set_result(item * 2)


async def test_items_waiting_together_go_in_one_batch_and_each_gets_its_own_answer() -> None:
    doubling = Doubling()
    answers = await asyncio.gather(*(doubling.submit(n) for n in range(10)))
    assert answers == [n * 2 for n in range(10)]
    assert doubling.batches == [list(range(10))]


async def test_a_batch_never_holds_more_than_its_bound() -> None:
    doubling = Doubling(max_batch=4)
    await asyncio.gather(*(doubling.submit(n) for n in range(10)))
    assert doubling.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


async def test_an_item_arriving_while_a_batch_is_out_waits_for_the_next_one() -> None:
    doubling = Doubling()
    doubling.release.clear()
    first = asyncio.create_task(doubling.submit(1))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(doubling.submit(2))
    await asyncio.sleep(0.01)
    doubling.release.set()
    assert await asyncio.gather(first, second) == [2, 4]
    assert doubling.batches == [[1], [2]]


async def test_a_failure_that_escapes_the_handler_fails_its_batch_and_the_next_batch_runs() -> None:
    doubling = Doubling(fail_with=RuntimeError("the handler broke"))
    results = await asyncio.gather(doubling.submit(1), doubling.submit(2), return_exceptions=True)
    assert [type(result) for result in results] == [RuntimeError, RuntimeError]
    doubling.fail_with = None
    assert await doubling.submit(3) == 6


async def test_closing_cancels_the_requests_still_waiting() -> None:
    doubling = Doubling()
    doubling.release.clear()
    waiting = [asyncio.create_task(doubling.submit(n)) for n in range(3)]
    await asyncio.sleep(0.01)
    await doubling.close()
    for task in waiting:
        with pytest.raises(asyncio.CancelledError):
            await task
