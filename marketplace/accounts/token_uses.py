"""When each bearer token was last used, written a few seconds late and many at a time.

`last_used_at` is advisory: it is shown to the account's owner and never decides access. A
write per request would put a commit on every authenticated request (the first request of
each buyer in a flash sale), so requests only note the time here and one UPDATE a few
seconds later writes every token noted meanwhile. A crash loses at most those seconds of
advisory times; the token checks themselves read the database on every request.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Final

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.repository import TokenRepository
from marketplace.batching import stop_task
from marketplace.resources import Resources

log = structlog.get_logger(__name__)

FLUSH_SECONDS: Final = 2.0
EXTRAS_KEY: Final = "accounts_token_uses"


class TokenUses:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, interval: float = FLUSH_SECONDS
    ) -> None:
        self._sessionmaker = sessionmaker
        self._interval = interval
        self._pending: dict[uuid.UUID, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, token_id: uuid.UUID, at: datetime) -> None:
        noted = self._pending.get(token_id)
        if noted is None or noted < at:
            self._pending[token_id] = at
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="token-uses")

    async def flush(self) -> int:
        """Write every noted time now; how many tokens were written."""
        pending, self._pending = self._pending, {}
        if not pending:
            return 0
        async with self._sessionmaker() as session:
            await TokenRepository(session).touch_many(pending)
            await session.commit()
        return len(pending)

    async def close(self) -> None:
        await stop_task(self._task)
        self._task = None
        await self.flush()

    async def _run(self) -> None:
        while self._pending:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                log.exception("token_uses_not_written")


def token_uses(resources: Resources) -> TokenUses:
    """The process's recorder, made on first use."""
    return resources.made_once(EXTRAS_KEY, TokenUses, lambda: TokenUses(resources.sessionmaker))


async def close_token_uses(resources: Resources) -> None:
    made = resources.made(EXTRAS_KEY, TokenUses)
    if made is not None:
        await made.close()
