"""Wiring checks: a task that proves a worker consumes the queue and reaches Redis."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from marketplace.jobs import JobName
from marketplace.observability import current_request_id
from workers import runtime
from workers.app import app
from workers.runtime import WorkerContext

HEARTBEAT_KEY = "marketplace:worker:heartbeat"
PING_KEY_PREFIX = "marketplace:ping:"
PING_TTL_SECONDS = 300

log = structlog.get_logger(__name__)


async def record_heartbeat(ctx: WorkerContext, token: str | None = None) -> dict[str, Any]:
    """A worker is alive when a task it consumed reached Redis: the heartbeat says when that
    last happened and for which request. A token names one ping so its sender can see that
    this very message was handled; both writes are plain SETs, so a redelivery is harmless."""
    heartbeat: dict[str, Any] = {
        "at": ctx.clock().isoformat(),
        "request_id": current_request_id(),
        "pid": os.getpid(),
    }
    payload = json.dumps(heartbeat)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.set(HEARTBEAT_KEY, payload)
        if token:
            pipe.set(PING_KEY_PREFIX + token, payload, ex=PING_TTL_SECONDS)
        await pipe.execute()
    log.info("heartbeat_recorded", token=token)
    return heartbeat


@app.task(
    name=JobName.PING.value,
    autoretry_for=(RedisConnectionError, RedisTimeoutError),
    max_retries=5,
    retry_backoff=True,
)
def ping(token: str | None = None) -> None:
    runtime.run(functools.partial(record_heartbeat, token=token))
