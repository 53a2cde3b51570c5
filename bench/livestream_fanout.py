"""Fan-out latency of one livestream event to 1,000 WebSocket subscribers on two API instances.

    uv run python bench/livestream_fanout.py [--subscribers 1000] [--events 50] [--gap 0.2]

What it does, on a database of its own (created, migrated, dropped at the end):
1. Seeds one live session (a host and the session row, inserted directly).
2. Starts two API instances as production runs them, each its own uvicorn process
   (`uvicorn --factory marketplace.app:create_app`), on the local PostgreSQL and one Redis.
3. From this process (the load generator, separate from both servers) opens `--subscribers`
   WebSocket connections to the session's public stream, half to each instance, and waits
   until every one of them has received a warm-up event.
4. Publishes `--events` events one at a time, `--gap` seconds apart, through the same path
   the API uses after a commit (the Lua publish script on Redis; each instance's channels
   plugin fans it out to its own subscribers). Each event carries its send time; each
   subscriber notes when it read it.

Figures (printed and written to bench/results/livestream_fanout.json): latency from publish
to receipt over every (event, subscriber) delivery (p50, p99, max), and per event the time
until its last subscriber had it (median and p99 over events). All deliveries must arrive
exactly once and in order. The clock is this one process's, so no clock skew enters; the
client's own work of reading 1,000 sockets on one core is included in the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from harness import create_database, drop_database, free_port, percentile, wait_ready
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from marketplace.livestreams.events import EventType, LiveEvent, LiveEventPublisher
from marketplace.schema import upgrade_to_head

RESULTS = Path(__file__).parent / "results" / "livestream_fanout.json"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


async def seed(dsn: str) -> uuid.UUID:
    conn = await asyncpg.connect(dsn)
    host_id, session_id = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    await conn.execute(
        """INSERT INTO users (id, login, display_name, role, password_hash, is_active)
           VALUES ($1, $2, 'Nguyễn Thị Hoa', 'host', 'not-a-password', true)""",
        host_id,
        f"host.{host_id.hex[:8]}@example.vn",
    )
    await conn.execute(
        """INSERT INTO livestream_sessions (id, host_user_id, title, platform, status,
               scheduled_start_at, scheduled_end_at, rules_text, hold_seconds, started_at)
           VALUES ($1, $2, 'Chợ phiên cam Xã Đoài', 'facebook', 'live', $3, $4,
               'Chốt đơn bằng bình luận mã + số lượng + số điện thoại.', 900, $3)""",
        session_id,
        host_id,
        now - timedelta(minutes=5),
        now + timedelta(hours=2),
    )
    await conn.close()
    return session_id


def start_server(sqlalchemy_url: str, port: int, var_dir: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MARKETPLACE_MODE": "embedded",
        "DATABASE_URL": sqlalchemy_url,
        "REDIS_URL": REDIS_URL,
        "MARKETPLACE_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
        "DATABASE_POOL_SIZE": "10",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "marketplace.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def measure(
    ports: list[int], session_id: uuid.UUID, subscribers: int, events: int, gap: float
) -> dict[str, Any]:
    redis = Redis.from_url(REDIS_URL)
    publisher = LiveEventPublisher(redis, clock=lambda: datetime.now(UTC))
    received: list[list[tuple[int, int]]] = [[] for _ in range(subscribers)]
    warmed = [asyncio.Event() for _ in range(subscribers)]
    done = asyncio.Event()
    sockets = []

    async def subscriber(index: int) -> None:
        port = ports[index % len(ports)]
        url = f"ws://127.0.0.1:{port}/api/livestreams/{session_id}/ws"
        ws = await connect(url, max_queue=None, open_timeout=60)
        sockets.append(ws)
        try:
            async for raw in ws:
                now_ns = time.time_ns()
                event = json.loads(raw)
                data = event["data"]
                if "warmup" in data:
                    warmed[index].set()
                    continue
                received[index].append((data["n"], now_ns - data["sent_ns"]))
                if data["n"] == events - 1:
                    return
        finally:
            if done.is_set():
                await ws.close()

    def event(data: dict[str, Any]) -> LiveEvent:
        return LiveEvent(EventType.STOCK_LEFT, session_id, datetime.now(UTC), data)

    tasks = []
    for start in range(0, subscribers, 50):
        tasks += [
            asyncio.create_task(subscriber(i)) for i in range(start, min(start + 50, subscribers))
        ]
        await asyncio.sleep(0.1)
    connect_deadline = time.monotonic() + 120
    while not all(w.is_set() for w in warmed):
        if time.monotonic() > connect_deadline:
            raise RuntimeError(f"only {sum(w.is_set() for w in warmed)} subscribers warmed up")
        await publisher.publish([event({"warmup": True})])
        await asyncio.sleep(0.5)
    await asyncio.sleep(1)

    for n in range(events):
        await publisher.publish([event({"n": n, "sent_ns": time.time_ns()})])
        await asyncio.sleep(gap)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    done.set()
    for ws in sockets:
        await ws.close()
    await redis.aclose()

    deliveries = [latency / 1e6 for per in received for _, latency in per]
    per_event_last = [max(per[n][1] for per in received) / 1e6 for n in range(events)]
    in_order = all([n for n, _ in per] == list(range(events)) for per in received)
    return {
        "deliveries": len(deliveries),
        "expected_deliveries": subscribers * events,
        "exactly_once_in_order": in_order,
        "p50_ms": round(percentile(deliveries, 0.50), 2),
        "p99_ms": round(percentile(deliveries, 0.99), 2),
        "max_ms": round(max(deliveries), 2),
        "last_subscriber_median_ms": round(percentile(per_event_last, 0.50), 2),
        "last_subscriber_p99_ms": round(percentile(per_event_last, 0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--gap", type=float, default=0.2)
    args = parser.parse_args()

    name = f"mp_bench_fanout_{uuid.uuid4().hex[:8]}"
    dsn = asyncio.run(create_database(name))
    sqlalchemy_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        upgrade_to_head(sqlalchemy_url)
        session_id = asyncio.run(seed(dsn))
        ports = [free_port(), free_port()]
        with tempfile.TemporaryDirectory() as var_dir:
            servers = [start_server(sqlalchemy_url, port, var_dir) for port in ports]
            for port in ports:
                wait_ready(f"http://127.0.0.1:{port}")
            figures = asyncio.run(
                measure(ports, session_id, args.subscribers, args.events, args.gap)
            )
        result = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "load_average_at_end": os.getloadavg(),
            },
            "servers": "2 x uvicorn --factory marketplace.app:create_app (one process each)",
            "redis": "one Redis, pub/sub through litestar channels",
            "load_generator": "websockets client, this process, one event loop",
            "subscribers": args.subscribers,
            "events": args.events,
            "gap_seconds": args.gap,
            **figures,
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps(result, indent=2, ensure_ascii=False))
        if not figures["exactly_once_in_order"] or (
            figures["deliveries"] != figures["expected_deliveries"]
        ):
            raise SystemExit("some subscriber missed, repeated or reordered an event")
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)
        asyncio.run(drop_database(name))


if __name__ == "__main__":
    main()
