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
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Final

from marketplace.accounts.repository import TokenOwner, token_owners_from_pool
from marketplace.batching import WaitingBatches
from marketplace.resources import Resources

MAX_BATCH: Final = 256
"""Bounds one statement's array, not how long a request waits."""
EXTRAS_KEY: Final = "accounts_token_lookups"

Lookup = Callable[[Sequence[str]], Awaitable[dict[str, TokenOwner]]]


class TokenLookups(WaitingBatches[str, "TokenOwner | None"]):
    def __init__(self, lookup: Lookup, *, max_batch: int = MAX_BATCH) -> None:
        super().__init__(max_batch=max_batch, name="token-lookups")
        self._lookup = lookup
        self.statements = 0
        """Lookups sent: how many token checks shared one shows in tests and benches."""

    async def owner(self, token_hash: str) -> TokenOwner | None:
        """The token of this digest and its owner, read after this call began; None if no
        such token exists."""
        return await self.submit(token_hash)

    async def handle(self, batch: list[tuple[str, asyncio.Future[TokenOwner | None]]]) -> None:
        # A failed lookup raises: `WaitingBatches` hands the error to this batch's requests
        # (an outage becomes a 503 upstream) and the next batch starts afresh.
        self.statements += 1
        found = await self._lookup(list(dict.fromkeys(digest for digest, _ in batch)))
        for digest, future in batch:
            if not future.done():
                future.set_result(found.get(digest))


def token_lookups(resources: Resources) -> TokenLookups:
    """The process's shared lookups, on the engine's pool, made on first use."""
    engine = resources.engine
    if engine is None:
        raise RuntimeError("shared token lookups need the app's own engine")
    return resources.made_once(
        EXTRAS_KEY, TokenLookups, lambda: TokenLookups(partial(token_owners_from_pool, engine))
    )


async def close_token_lookups(resources: Resources) -> None:
    made = resources.made(EXTRAS_KEY, TokenLookups)
    if made is not None:
        await made.close()
