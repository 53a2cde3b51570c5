"""A Celery worker killed mid-task: the message comes back (acks_late), the task runs again,
and its effect happens once because the body is idempotent.

Two kills, the two ways a message comes back: the pool process running the task is killed
(the worker sees its child lost and requeues at once: `task_reject_on_worker_lost`), then
the whole worker is killed, parent and child, as when its machine dies (nobody is left to
requeue; the broker hands the unacknowledged message to another worker once it is older
than `BROKER_VISIBILITY_TIMEOUT`)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from marketplace.embedded import EmbeddedRedis
from marketplace.jobs import TASK_QUEUE
from marketplace.settings import DatabaseSettings, RedisSettings, Settings
from tests.faults.conftest import (
    Api,
    catalog_body,
    fetch,
    log_in_buyers,
    open_shop,
    place,
    service_environment,
    stock_books,
)
from tests.faults.services import OwnedPostgres, OwnedProcess
from tests.faults.worker_app import TASK_NAME, done_key, runs_key
from workers.app import celery_config
from workers.orders import release_expired_holds
from workers.runtime import WorkerRuntime

BROKER_DB = 2
"""The workers' Redis database: the API's (0) never sees these messages."""
VISIBILITY_TIMEOUT = 3
"""Short for the test, yet longer than any run's work before its kill: a message older than
this is handed out again even while its first worker still runs it (Redis cannot tell a slow
worker from a dead one), which would blur which kill brought it back."""


def test_the_broker_hands_on_unacknowledged_messages_after_the_visibility_timeout() -> None:
    settings = Settings(
        database=DatabaseSettings(url="postgresql+asyncpg://u@h/d"),
        redis=RedisSettings(url="redis://127.0.0.1:6379/0", broker_visibility_timeout=30),
    )
    options = celery_config(settings)["broker_transport_options"]

    assert options["visibility_timeout"] == 30
    # Looked for often enough that the timeout, not kombu's ~100 s sweep, bounds the wait.
    assert options["unacked_restore_interval"] * options["unacked_restore_throttle"] <= 15
    assert Settings().redis.broker_visibility_timeout == 3600


def sweep_due_holds(postgres: OwnedPostgres, redis: EmbeddedRedis, at: datetime) -> int:
    """The real sweep, in this process (its own thread, loop and engine), at `at`."""
    settings = Settings(
        database=DatabaseSettings(url=postgres.url(), pool_size=1, max_overflow=0),
        redis=RedisSettings(url=redis.url(BROKER_DB)),
    )
    worker_runtime = WorkerRuntime(settings)
    loop = worker_runtime.loop
    try:
        released = worker_runtime.run(
            lambda ctx: release_expired_holds(dataclasses.replace(ctx, clock=lambda: at))
        )
        # The stock events the sweep publishes after its commits run in the background.
        if pending := asyncio.all_tasks(loop):
            loop.run_until_complete(asyncio.wait(pending))
        return released
    finally:
        worker_runtime.close()


def worker(env: dict[str, str], log_dir: Path, n: int) -> OwnedProcess:
    return OwnedProcess(
        f"worker-{n}",
        [sys.executable, "-m", "celery", "-A", "tests.faults.worker_app", "worker",
         "--pool", "prefork", "--concurrency", "1", "-Q", TASK_QUEUE, "-l", "INFO",
         "--without-heartbeat", "--without-gossip", "--without-mingle",
         "-n", f"faults-{n}-{uuid.uuid4().hex[:6]}@%h"],
        env,
        log_dir / f"worker-{n}.log",
    )  # fmt: skip


@pytest.fixture
async def broker(owned_redis: EmbeddedRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(owned_redis.url(BROKER_DB))
    yield client
    await client.aclose()


async def runs(
    broker: Redis, key: str, count: int, within: float, *logs: OwnedProcess
) -> list[Any]:
    """The first `count` entries of a list the task appends to, waiting up to `within`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        entries = await broker.lrange(key, 0, -1)
        if len(entries) >= count:
            return [json.loads(e) for e in entries]
        await asyncio.sleep(0.05)
    output = "\n".join(f"--- {p.name}\n{p.output()}" for p in logs)
    raise AssertionError(f"fewer than {count} entries in {key} after {within}s\n{output}")


async def test_a_task_whose_worker_is_killed_mid_run_runs_again_and_takes_effect_once(
    *,
    api: Api,
    owned_postgres: OwnedPostgres,
    owned_redis: EmbeddedRedis,
    engine: AsyncEngine,
    http: httpx.AsyncClient,
    broker: Redis,
    work_dir: Path,
) -> None:
    dsn = owned_postgres.dsn()
    # Other tests' orders expire 15 minutes after they were placed: swept first, so the
    # task's runs have only this test's order to release (quick, well within the timeout).
    await asyncio.to_thread(
        sweep_due_holds, owned_postgres, owned_redis, datetime.now(UTC) + timedelta(minutes=16)
    )
    shop = await open_shop(engine, variants=1, stock=10)
    (buyer,) = await log_in_buyers(engine, http, 1)
    placed = await place(http, buyer, uuid.uuid4().hex, catalog_body(shop.variant_ids, 3))
    assert placed.status_code == 201, placed.text
    order = placed.json()
    # The sweep runs at a clock just past this order's hold, so the order's hold is due.
    at = datetime.fromisoformat(order["hold_expires_at"]) + timedelta(seconds=1)
    assert (await stock_books(dsn, shop))[str(shop.variant_ids[0])] == (7, 3)

    env = service_environment(work_dir, owned_postgres, owned_redis, redis_db=BROKER_DB)
    env.update({"BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT), "LOG_LEVEL": "INFO"})
    token = uuid.uuid4().hex
    # Two workers on the queue from the start (their start-ups overlap); whichever runs the
    # task is the one that gets killed.
    workers = [worker(env, work_dir, n) for n in (1, 2)]
    sender = Celery("faults-sender", broker=owned_redis.url(BROKER_DB), set_as_current=False)
    sender.conf.update(task_serializer="json", accept_content=["json"])
    for process in workers:
        process.start()
    try:
        await asyncio.to_thread(
            sender.send_task,
            TASK_NAME,
            # Runs 1 and 2 wait to be killed; run 3 finishes.
            kwargs={"token": token, "at": at.isoformat(), "waits": 2},
            queue=TASK_QUEUE,
        )
        run = (await runs(broker, runs_key(token), 1, 60, *workers))[0]
        # Run 1 has committed its effect and waits, its message not yet acknowledged: the
        # pool process dies there, and its worker requeues the message at once.
        os.kill(run["pid"], signal.SIGKILL)
        assert run["released"] >= 1
        assert (await stock_books(dsn, shop))[str(shop.variant_ids[0])] == (10, 0)
        again = (await runs(broker, runs_key(token), 2, 30, *workers))[1]
        assert again["pid"] != run["pid"]

        # The whole worker running it dies: the other gets the message from the broker.
        (running,) = [p for p in workers if p.pid == os.getpgid(again["pid"])]
        (survivor,) = [p for p in workers if p is not running]
        running.kill()
        done = (await runs(broker, done_key(token), 1, 60, *workers))[0]
        assert os.getpgid(done["pid"]) == survivor.pid
        assert done["pid"] not in {run["pid"], again["pid"]}
        # Acknowledged at last: nothing left unacknowledged or queued.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10 + VISIBILITY_TIMEOUT
        while await broker.hlen("unacked") or await broker.llen(TASK_QUEUE):
            assert loop.time() < deadline, survivor.output()
            await asyncio.sleep(0.05)
        # Three runs at least (one more if a loaded machine let a waiting run outlive the
        # visibility timeout: Redis hands out again whatever is that old), one effect.
        every_run = [json.loads(r) for r in await broker.lrange(runs_key(token), 0, -1)]
        assert len(every_run) >= 3
        assert [r["released"] for r in every_run[1:]] == [0] * (len(every_run) - 1)
        assert survivor.stop() == 0, survivor.output()
    finally:
        for process in workers:
            process.kill()
        await broker.delete(runs_key(token), done_key(token))

    # Three runs, one effect: the hold released once, the stock back once, the order
    # cancelled once.
    assert (await stock_books(dsn, shop))[str(shop.variant_ids[0])] == (10, 0)
    rows = await fetch(
        dsn,
        "SELECT o.status, o.cancel_reason, COUNT(h.id) FILTER (WHERE h.released_at IS NOT NULL)"
        " AS released FROM orders o JOIN stock_holds h ON h.order_id = o.id"
        " WHERE o.id = $1 GROUP BY o.status, o.cancel_reason",
        uuid.UUID(order["id"]),
    )
    assert [dict(r) for r in rows] == [
        {"status": "cancelled", "cancel_reason": "hold_expired", "released": 1}
    ]
