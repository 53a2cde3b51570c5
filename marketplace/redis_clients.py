"""How every process makes its Redis clients.

`Redis.from_url` alone retries nothing: after Redis restarts, each connection still idle in
the pool fails the next command once with "Connection closed by server", so the first
requests after an outage would answer 503 although Redis is back. One immediate retry on a
fresh connection is enough for that; while Redis is really down the retry is refused at
once too, and the request fails as before (503, see `marketplace.outages`).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRIES = 1


def connect_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        retry=Retry(NoBackoff(), RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
