"""Bearer-token checks of concurrent requests share one statement.

Every authenticated request reads its token and owner from the database (nothing about a
token is cached, so a revocation holds from the next request on). Under load hundreds of
requests of one process wait for that read at once; one statement per request cost each of
them a pool checkout, a round trip, and a statement in PostgreSQL. Here the reads waiting
at the same moment go out as one `token_hash = ANY(...)` lookup on one connection.

There is no timer: a lookup alone is sent at once, and while one is in flight the next
gathers, so batches follow the load. A request's lookup is always sent after the request
arrived (it never joins a statement already in flight), so it sees every revocation
committed before it. A failed statement fails the requests of its batch only; the next
batch starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Final

from marketplace.accounts.repository import TokenOwner, token_owners_from_pool
from marketplace.resources import Resources

MAX_BATCH: Final = 256
"""Bounds one statement's array, not how long a request waits."""
EXTRAS_KEY: Final = "accounts_token_lookups"

Lookup = Callable[[Sequence[str]], Awaitable[dict[str, TokenOwner]]]
_Waiting = tuple[str, "asyncio.Future[TokenOwner | None]"]


class TokenLookups:
    def __init__(self, lookup: Lookup, *, max_batch: int = MAX_BATCH) -> None:
        self._lookup = lookup
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._task: asyncio.Task[None] | None = None
        self.statements = 0
        """Lookups sent: how many token checks shared one shows in tests and benches."""

    async def owner(self, token_hash: str) -> TokenOwner | None:
        """The token of this digest and its owner, read after this call began; None if no
        such token exists."""
        future: asyncio.Future[TokenOwner | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((token_hash, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="token-lookups")
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._answer(batch)
        except asyncio.CancelledError:
            # Shutting down: nobody is left to send the lookups of the requests still waiting.
            for _, future in self._waiting:
                future.cancel()
            self._waiting.clear()
            raise

    async def _answer(self, batch: list[_Waiting]) -> None:
        try:
            self.statements += 1
            found = await self._lookup(list(dict.fromkeys(digest for digest, _ in batch)))
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            # The request sees the driver's error (an outage becomes a 503 upstream).
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for digest, future in batch:
            # A request that went away (its client disconnected) cancelled its future.
            if not future.done():
                future.set_result(found.get(digest))


def token_lookups(resources: Resources) -> TokenLookups:
    """The process's shared lookups, on the engine's pool, made on first use."""
    made = resources.extras.get(EXTRAS_KEY)
    if not isinstance(made, TokenLookups):
        if resources.engine is None:
            raise RuntimeError("shared token lookups need the app's own engine")
        made = TokenLookups(partial(token_owners_from_pool, resources.engine))
        resources.extras[EXTRAS_KEY] = made
    return made


async def close_token_lookups(resources: Resources) -> None:
    made = resources.extras.get(EXTRAS_KEY)
    if isinstance(made, TokenLookups):
        await made.close()
