"""A few seconds of memory for the public listing's answers, per worker process.

Public listing pages already tell browsers and proxies they may be `max-age=30` seconds old
(`Cache-Control`); keeping the encoded answer for `ttl_seconds` (far less) in the process
serves a busy first page or a popular search without touching the database, and is no staler
than what every client is already allowed to keep. Requests that miss at the same moment wait
for one computation instead of running the same query each (single flight); while an expired
page is being recomputed, the others asking for it get the expired copy rather than wait (a
busy page's expiry stalled every request in flight on it). Errors are never kept. Nothing
private goes through it: only public, anonymous answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable

DEFAULT_TTL_SECONDS = 5.0
DEFAULT_MAX_ENTRIES = 4096


class PageCache:
    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_entries <= 0:
            raise ValueError("a page cache needs a positive lifetime and size")
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, bytes]] = {}
        self._in_flight: dict[Hashable, asyncio.Future[bytes]] = {}

    def get(self, key: Hashable) -> bytes | None:
        """The page while it is fresh. An expired one stays (until replaced or evicted) to
        answer during its recomputation only."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, body = entry
        if self._clock() >= expires_at:
            return None
        return body

    def put(self, key: Hashable, body: bytes) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: the first entry is the oldest.
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock() + self.ttl_seconds, body)

    async def get_or_compute(self, key: Hashable, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        cached = self.get(key)
        if cached is not None:
            return cached
        waiting = self._in_flight.get(key)
        if waiting is not None:
            expired = self._entries.get(key)
            if expired is not None:
                return expired[1]
            return await asyncio.shield(waiting)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            body = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            # Retrieved here so a failure nobody else waited for is not reported as lost.
            future.exception()
            raise
        else:
            self.put(key, body)
            future.set_result(body)
            return body
        finally:
            del self._in_flight[key]

    def __len__(self) -> int:
        return len(self._entries)
