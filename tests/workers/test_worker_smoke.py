"""A real worker process consumes a ping sent the way the API sends jobs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from marketplace.jobs import TASK_QUEUE, CelerySender, Job, JobName
from marketplace.settings import Settings
from workers.system import HEARTBEAT_KEY, PING_KEY_PREFIX

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BROKER_DB = 14
"""A logical database of its own, so no other test's worker consumes the ping."""


def _with_db(url: str, db: int) -> str:
    return urlsplit(url)._replace(path=f"/{db}").geturl()


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(_with_db(settings.redis.url, BROKER_DB))
    yield client
    await client.aclose()


async def _stop(worker: asyncio.subprocess.Process) -> int | None:
    """SIGTERM is Celery's warm shutdown; a worker that ignores it is killed, never orphaned.
    Returns the exit code of a worker that stopped by itself, None if it had to be killed."""
    if worker.returncode is not None:
        return worker.returncode
    worker.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(worker.wait(), timeout=15)
    except TimeoutError:
        worker.kill()
        await worker.wait()
        return None


@pytest.mark.slow
async def test_a_worker_process_runs_a_ping_sent_by_the_api_sender_with_its_request_id(
    settings: Settings, broker: Redis, tmp_path: Path
) -> None:
    broker_url = _with_db(settings.redis.url, BROKER_DB)
    token = uuid.uuid4().hex
    request_id = f"smoke-{token[:12]}"
    log_path = tmp_path / "worker.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": broker_url,
        "MARKETPLACE_MODE": "embedded",
        "MARKETPLACE_VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
    }
    with log_path.open("wb") as log_file:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "--pool=solo",
            "-Q",
            TASK_QUEUE,
            "-l",
            "INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"smoke-{token[:8]}@%h",
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await CelerySender(broker_url).send(
            [Job(JobName.PING, {"token": token}, request_id=request_id)]
        )
        stored = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while stored is None and worker.returncode is None and loop.time() < deadline:
            stored = await broker.get(PING_KEY_PREFIX + token)
            if stored is None:
                await asyncio.sleep(0.2)
    finally:
        stopped_with = await _stop(worker)
        with contextlib.suppress(Exception):
            await broker.delete(PING_KEY_PREFIX + token, HEARTBEAT_KEY)

    log = log_path.read_text(errors="replace")
    assert stored is not None, f"no heartbeat within 30 s; worker output:\n{log}"
    assert json.loads(stored)["request_id"] == request_id
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(
        r.get("event") == "heartbeat_recorded" and r.get("request_id") == request_id
        for r in records
    ), log
    assert stopped_with == 0, f"worker did not stop cleanly on SIGTERM:\n{log}"
