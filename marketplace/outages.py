"""Which failures mean PostgreSQL or Redis is down, not that our code is wrong.

While the database restarts or Redis is away, a request fails with whatever the driver
raised at that moment: a refused or missing socket, "the database system is shutting
down", a connection cut mid-query. Those are answered 503 with Retry-After, so clients
retry (with the same Idempotency-Key) instead of reporting a bug; anything else stays a 500.
"""

from __future__ import annotations

import re
from types import TracebackType

import redis.exceptions as redis_errors
from sqlalchemy.exc import DBAPIError

RETRY_AFTER_SECONDS = 2

# asyncpg's classes by name (it ships no type information):
_PG_DOWN = frozenset(
    {
        "PostgresConnectionError",  # class 08: cannot connect, connection does not exist
        "CannotConnectNowError",  # 57P03: starting up or shutting down
        "AdminShutdownError",  # 57P01: terminated by a fast or immediate shutdown
        "CrashShutdownError",  # 57P02
    }
)
_REDIS_DOWN = (redis_errors.ConnectionError, redis_errors.TimeoutError)
# asyncpg's protocol left in FAILED (1), ERROR_CONSUME (2) or TERMINATING (4) by a server
# that hung up mid-exchange; a second coroutine on a healthy connection raises
# InterfaceError instead, which stays a 500.
_BROKEN_PROTOCOL = re.compile(r"another operation \([124]\) is in progress")
_DRIVER_PATHS = ("/asyncpg/", "/redis/", "/kombu/")


def is_outage(exc: BaseException) -> bool:
    """True when `exc`, or an exception it was raised from, says a backing service could
    not be reached or dropped the connection."""
    return unavailable_service(exc) is not None


def unavailable_service(exc: BaseException) -> str | None:
    """`"database"` or `"redis"`: the service whose outage `exc` (or an exception it was
    raised from) is, so the 503 can name it; None when it is no outage."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_outage(current):
            return _service_of(current)
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            current = current.orig
        else:
            current = current.__cause__
    return None


def _service_of(exc: BaseException) -> str:
    if isinstance(exc, _REDIS_DOWN):
        return "redis"
    tb = exc.__traceback__
    while tb is not None:
        if any(part in tb.tb_frame.f_code.co_filename for part in ("/redis/", "/kombu/")):
            return "redis"
        tb = tb.tb_next
    return "database"


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, _REDIS_DOWN) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return True
    asyncpg_classes = {
        cls.__name__ for cls in type(exc).__mro__ if cls.__module__.startswith("asyncpg.")
    }
    if asyncpg_classes:
        return bool(
            asyncpg_classes & _PG_DOWN
            or ("InternalClientError" in asyncpg_classes and _BROKEN_PROTOCOL.search(str(exc)))
            or ("InterfaceError" in asyncpg_classes and "connection is closed" in str(exc))
        )
    # A socket that refuses, resets or no longer exists (a stopped PostgreSQL removes its
    # Unix socket) reaches us raw from the driver's connect: only then is it an outage.
    if isinstance(exc, ConnectionError | FileNotFoundError | TimeoutError):
        return _raised_in_driver(exc.__traceback__)
    return False


def _raised_in_driver(tb: TracebackType | None) -> bool:
    while tb is not None:
        if any(part in tb.tb_frame.f_code.co_filename for part in _DRIVER_PATHS):
            return True
        tb = tb.tb_next
    return False
