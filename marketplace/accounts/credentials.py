"""Password hashing (argon2id) and opaque bearer tokens.

Hashing is CPU-bound (tens of milliseconds at production cost), so it runs in a worker
thread and never blocks the event loop serving other requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Sequence
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from marketplace.settings import SecuritySettings

TOKEN_BYTES = 32
TOKEN_MAX_LENGTH = 128
"""Longer bearer values are refused before any hashing or query."""


class Passwords:
    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Without a hash (unknown login) the password is checked against a dummy hash of
        the same cost, so an unknown login takes as long as a wrong password and response
        times do not reveal which logins exist."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            self.hasher.verify(password_hash or self._dummy(), password)
        except (VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def _dummy(self) -> str:
        # Made on first need, in the worker thread; two threads racing both make a valid one.
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash


@cache
def _passwords(time_cost: int, memory_cost: int) -> Passwords:
    return Passwords(PasswordHasher(time_cost=time_cost, memory_cost=memory_cost))


def passwords_for(security: SecuritySettings) -> Passwords:
    """One hasher per cost setting, shared by every request of the process."""
    return _passwords(security.argon2_time_cost, security.argon2_memory_cost)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """What the database keeps: a random 256-bit token needs no salt or slow hash."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when malformed."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > TOKEN_MAX_LENGTH:
        return None
    if not token.isascii() or any(c.isspace() for c in token):
        return None
    return token


WEBSOCKET_SUBPROTOCOL = "bearer"
"""Browsers cannot set headers on a WebSocket, so a browser offers the subprotocols
`["bearer", "<token>"]` (the Sec-WebSocket-Protocol header) and the server answers `bearer`.
Never the query string: URLs end up in access logs and browser history."""


def websocket_bearer_token(subprotocols: Sequence[str]) -> str | None:
    """The token offered right after `bearer` among the subprotocols, or None when it is
    missing or malformed (the same rules as the Authorization header's)."""
    try:
        candidate = subprotocols[subprotocols.index(WEBSOCKET_SUBPROTOCOL) + 1]
    except (ValueError, IndexError):
        return None
    return bearer_token(f"Bearer {candidate}")
