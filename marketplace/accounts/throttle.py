"""Login rate limits: fixed windows in Redis, per account and per client address.

Every attempt counts, whatever its outcome, against both windows. A successful login clears
the account's window (its owner has just proven the password) but never the address's, so
one address cannot spread guesses over many accounts by logging into its own in between.
Keys hold a digest of the login, not the login itself.
"""

from __future__ import annotations

import hashlib

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from marketplace.errors import RateLimited, ServiceUnavailable
from marketplace.settings import SecuritySettings

log = structlog.get_logger(__name__)

KEY_PREFIX = "mp:login"


class LoginThrottle:
    def __init__(self, redis: Redis, security: SecuritySettings) -> None:
        self._redis = redis
        self._security = security

    def _account_key(self, login: str) -> str:
        digest = hashlib.sha256(login.encode()).hexdigest()[:32]
        return f"{KEY_PREFIX}:account:{digest}"

    def _address_key(self, ip: str) -> str:
        return f"{KEY_PREFIX}:ip:{ip}"

    async def attempt(self, login: str, ip: str) -> None:
        """Count one attempt; raise `RateLimited` (with the seconds left in the window) when
        either window is over its limit."""
        window = self._security.login_window_seconds
        account_key, address_key = self._account_key(login), self._address_key(ip)
        # SET NX EX + INCR (not EXPIRE NX, which Redis 6.2 in the embedded run lacks): the
        # first attempt opens the window and later ones never extend it.
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in (account_key, address_key):
                    pipe.set(key, 0, ex=window, nx=True)
                    pipe.incr(key)
                    pipe.ttl(key)
                replies = await pipe.execute()
        except RedisError as exc:
            # Fail closed: without the counters, unlimited password guessing would be open.
            raise ServiceUnavailable("login is unavailable for a moment; retry shortly") from exc
        account_count, account_ttl = int(replies[1]), int(replies[2])
        address_count, address_ttl = int(replies[4]), int(replies[5])
        waits = []
        if account_count > self._security.login_attempts_per_account:
            waits.append(account_ttl if account_ttl > 0 else window)
        if address_count > self._security.login_attempts_per_ip:
            waits.append(address_ttl if address_ttl > 0 else window)
        if waits:
            retry_after = max(waits)
            raise RateLimited(retry_after, f"too many login attempts; retry in {retry_after} s")

    async def succeeded(self, login: str) -> None:
        try:
            await self._redis.delete(self._account_key(login))
        except RedisError:
            # The login itself succeeded; a window left to expire on its own is harmless.
            log.warning("login_window_not_cleared")
