"""Token last-use times written late and many at a time (accounts/token_uses.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.models import ApiToken
from marketplace.accounts.token_uses import TokenUses
from tests.accounts.factories import create_user, issue_token

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def _last_used(session: AsyncSession, token_id: object) -> datetime | None:
    session.expire_all()
    return await session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token_id))


async def test_noted_uses_are_written_in_one_flush_and_never_move_back(
    session: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    first = await issue_token(session, await create_user(session))
    second = await issue_token(session, await create_user(session))
    uses = TokenUses(sessionmaker, interval=3600)

    uses.record(first.token_id, T0)
    uses.record(first.token_id, T0 + timedelta(minutes=5))
    uses.record(first.token_id, T0 + timedelta(minutes=1))  # older than noted: ignored
    uses.record(second.token_id, T0)
    assert await _last_used(session, first.token_id) is None  # nothing written yet

    assert await uses.flush() == 2
    assert await _last_used(session, first.token_id) == T0 + timedelta(minutes=5)
    assert await _last_used(session, second.token_id) == T0
    assert await uses.flush() == 0

    # A later flush with an older time (another process noted it late) keeps the newer one.
    uses.record(first.token_id, T0 + timedelta(minutes=2))
    await uses.close()
    assert await _last_used(session, first.token_id) == T0 + timedelta(minutes=5)
