"""The production Celery app with one more task, for the worker-kill test:
`celery -A tests.faults.worker_app worker` runs every real task plus this one.

The task runs the real body of `orders.release_expired_holds` at a clock the test chooses,
records the run, then (the first `waits` runs only) waits at a known point: after the
body's commit, before the task returns and its message is acknowledged. A worker killed
there has done the work but not said so, which is exactly where acks_late redelivers and
only an idempotent body keeps the effect single.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from datetime import datetime

from workers import runtime
from workers.app import app
from workers.orders import release_expired_holds
from workers.runtime import WorkerContext

TASK_NAME = "faults.release_expired_holds_then_wait"
MAX_WAIT_SECONDS = 60.0
"""How long a waiting run waits for its kill; one never killed then finishes."""


def runs_key(token: str) -> str:
    return f"faults:{token}:runs"


def done_key(token: str) -> str:
    return f"faults:{token}:done"


async def release_then_wait(ctx: WorkerContext, token: str, at: datetime, waits: int) -> int:
    released = await release_expired_holds(dataclasses.replace(ctx, clock=lambda: at))
    run = {"pid": os.getpid(), "released": released}
    if await ctx.redis.rpush(runs_key(token), json.dumps(run)) <= waits:
        await asyncio.sleep(MAX_WAIT_SECONDS)
    await ctx.redis.rpush(done_key(token), json.dumps(run))
    return released


@app.task(name=TASK_NAME)
def release_then_wait_task(token: str, at: str, waits: int) -> int:
    moment = datetime.fromisoformat(at)
    return runtime.run(lambda ctx: release_then_wait(ctx, token, moment, waits))
