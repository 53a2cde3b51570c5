"""Every query of the accounts domain."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from marketplace.accounts.errors import LoginTaken
from marketplace.accounts.models import ApiToken, JurisdictionLevel, Role, User
from marketplace.outages import is_outage


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self._session.get(User, user_id)

    async def get_by_login(self, login: str) -> User | None:
        """`login` must already be normalised (the column holds only that spelling)."""
        result = await self._session.execute(select(User).where(User.login == login))
        return result.scalar_one_or_none()

    async def add(self, user: User) -> User:
        """Insert now, so a login taken by a concurrent request is a `LoginTaken` here and
        not an error at commit; the savepoint keeps the caller's transaction usable."""
        try:
            async with self._session.begin_nested():
                self._session.add(user)
        except IntegrityError as exc:
            if "uq_users_login" in str(exc.orig):
                raise LoginTaken() from None
            raise
        return user

    async def page(
        self, *, limit: int, offset: int, role: Role | None = None
    ) -> tuple[Sequence[User], int]:
        """One page, oldest first, and the total count under the same filter."""
        query = select(User)
        count = select(func.count()).select_from(User)
        if role is not None:
            query = query.where(User.role == role)
            count = count.where(User.role == role)
        rows = await self._session.execute(
            query.order_by(User.created_at, User.id).limit(limit).offset(offset)
        )
        total = await self._session.scalar(count)
        return rows.scalars().all(), int(total or 0)

    async def flush(self) -> None:
        await self._session.flush()


@dataclass(frozen=True, slots=True)
class TokenOwner:
    token_id: uuid.UUID
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    user_id: uuid.UUID
    role: Role
    display_name: str
    jurisdiction_level: JurisdictionLevel | None
    jurisdiction_code: str | None
    is_active: bool

    def is_usable(self, now: datetime) -> bool:
        return self.is_active and self.revoked_at is None and now < self.expires_at


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, token: ApiToken) -> ApiToken:
        self._session.add(token)
        await self._session.flush()
        return token

    async def find_with_user(self, token_hash: str) -> TokenOwner | None:
        return await token_owner(await self._session.connection(), token_hash)

    async def touch(self, token_id: uuid.UUID, now: datetime) -> None:
        await self._session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
        )

    async def touch_many(self, used: Mapping[uuid.UUID, datetime]) -> None:
        """Many advisory last-use times in one statement (`token_uses`); never moves a
        time back. Its commit need not wait for the disk: nothing depends on it."""
        ids = sorted(used)
        await self._session.execute(text("SET LOCAL synchronous_commit TO off"))
        await self._session.execute(
            _TOUCH_MANY, {"ids": ids, "ats": [used[token_id] for token_id in ids]}
        )

    async def revoke(self, token_id: uuid.UUID, now: datetime) -> bool:
        result = await self._session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(ApiToken.id)
        )
        return result.first() is not None

    async def revoke_all(self, user_id: uuid.UUID, now: datetime) -> int:
        result = await self._session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(ApiToken.id)
        )
        return len(result.all())


_TOUCH_MANY = text(
    """
    UPDATE api_tokens AS t
       SET last_used_at = u.at
      FROM unnest(CAST(:ids AS uuid[]), CAST(:ats AS timestamptz[])) AS u(id, at)
     WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)
    """
)


_OWNERS_BY_DIGESTS = """
    SELECT t.token_hash, t.id AS token_id, t.expires_at, t.revoked_at, t.last_used_at,
           u.id AS user_id, u.role, u.display_name, u.jurisdiction_level,
           u.jurisdiction_code, u.is_active
      FROM api_tokens AS t JOIN users AS u ON u.id = t.user_id
     WHERE t.token_hash = ANY($1::varchar[])
"""


async def token_owner(connection: AsyncConnection, token_hash: str) -> TokenOwner | None:
    """The token and its owner in one indexed lookup, on a connection the caller holds (a
    test's transaction)."""
    return (await token_owners(connection, [token_hash])).get(token_hash)


async def token_owners(
    connection: AsyncConnection, token_hashes: Sequence[str]
) -> dict[str, TokenOwner]:
    """Tokens and their owners by digest, in one indexed lookup (unique index on
    token_hash), on a connection the caller holds. A failure leaves the connection in an
    unknown state, so it is invalidated, as SQLAlchemy would."""
    try:
        return await _owners_by_driver(await connection.get_raw_connection(), token_hashes)
    except BaseException:
        await connection.invalidate()
        raise


async def token_owners_from_pool(
    engine: AsyncEngine, token_hashes: Sequence[str]
) -> dict[str, TokenOwner]:
    """`token_owners` on a connection borrowed raw from the engine's pool: it runs for every
    authenticated request (accounts/token_lookups.py), and the `AsyncConnection` around a
    borrowed connection cost more CPU than the query (bench/request_cost.py). No transaction
    is begun on it (one statement is its own snapshot), so it goes back as it came.

    Outside SQLAlchemy's `Connection`, a dead connection would only be dropped by itself;
    after a database restart every pooled connection is dead, so here (as SQLAlchemy does)
    the whole generation is dropped, and the lookup, a read, is tried once more on a fresh
    connection: a restart costs no request its token check once the database is back."""
    try:
        return await _owners_on_pooled(engine, token_hashes)
    except BaseException as exc:
        if not is_outage(exc):
            raise
    return await _owners_on_pooled(engine, token_hashes)


async def _owners_on_pooled(
    engine: AsyncEngine, token_hashes: Sequence[str]
) -> dict[str, TokenOwner]:
    raw = await engine.raw_connection()
    try:
        return await _owners_by_driver(raw, token_hashes)
    except BaseException as exc:
        # Closing a connection in an unknown state needs I/O, hence SQLAlchemy's greenlet.
        if is_outage(exc):
            await greenlet_spawn(engine.sync_engine.pool._invalidate, raw, exc)
        else:
            await greenlet_spawn(raw.invalidate)
        raise
    finally:
        await greenlet_spawn(raw.close)


async def _owners_by_driver(
    raw: PoolProxiedConnection, token_hashes: Sequence[str]
) -> dict[str, TokenOwner]:
    """Sent to the driver itself: no ORM entities, no statement to compile, no result
    wrapper (half the CPU of an authenticated request that does little else)."""
    driver = raw.driver_connection
    if driver is None:
        raise RuntimeError("a pooled connection without its driver connection")
    rows = await driver.fetch(_OWNERS_BY_DIGESTS, list(token_hashes))
    return {row["token_hash"]: _owner_of(row) for row in rows}


def _owner_of(row: Any) -> TokenOwner:
    level = row["jurisdiction_level"]
    return TokenOwner(
        token_id=_as_uuid(row["token_id"]),
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
        user_id=_as_uuid(row["user_id"]),
        role=Role(row["role"]),
        display_name=row["display_name"],
        jurisdiction_level=None if level is None else JurisdictionLevel(level),
        jurisdiction_code=row["jurisdiction_code"],
        is_active=row["is_active"],
    )


def _as_uuid(value: Any) -> uuid.UUID:
    """The driver's UUID (asyncpg's own class) as the standard library's."""
    return value if type(value) is uuid.UUID else uuid.UUID(bytes=value.bytes)
