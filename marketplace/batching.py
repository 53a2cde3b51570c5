"""Requests of one process that wait at the same moment share one round trip.

The shape of the group commit (orders/group_commit.py: orders share a transaction) and of the
shared token lookups (accounts/token_lookups.py: token checks share a statement). A request
leaves its item and waits on a future; one task at a time takes every item waiting (up to
`max_batch`) and answers them together. There is no timer: an item alone goes at once, and
while one batch is out the next gathers, so batches follow the load. An item is always
handled by a batch that started after it arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class WaitingBatches(Generic[Item, Answer]):
    """Subclasses answer a batch in `handle`: a result or an exception for each future that
    is not done (a request that went away cancelled its own)."""

    def __init__(self, *, max_batch: int, name: str) -> None:
        self._max_batch = max_batch
        self._name = name
        self._waiting: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Answer:
        """The item's answer, once a batch started after this call has handled it."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.resubmit(item, future)
        return await future

    def resubmit(self, item: Item, future: asyncio.Future[Answer]) -> None:
        """Put an item (back) in line for the next batch, its caller still waiting."""
        self._waiting.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        self._cancel_waiting()

    async def handle(self, batch: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    await self.handle(batch)
                except asyncio.CancelledError:
                    _cancel(batch)
                    raise
                except Exception as exc:
                    # `handle` answers its own failures; this one escaped it, so the
                    # batch's requests get it rather than waiting for ever.
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
        except asyncio.CancelledError:
            # Shutting down: nobody is left to answer the requests still waiting.
            self._cancel_waiting()
            raise

    def _cancel_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        _cancel(waiting)


def _cancel(batch: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
    for _, future in batch:
        future.cancel()


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel a process's background task and wait until it has stopped."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
