"""One hot item, many buyers: POST /api/orders until it is sold out, then 5 s more.

    uv run python bench/orders_hot_item.py [--units 3000] [--connections 64] [--buyers 512]

What it does, on a database of its own (created, migrated, dropped at the end):
1. Seeds with asyncpg: one household's listed product with one variant of `--units` units
   at 180,000 đồng, and `--buyers` buyer accounts with a bearer token each.
2. Starts the production server as a user runs it (`uvicorn --factory
   marketplace.app:create_app --workers 2`) on the local PostgreSQL and Redis.
3. From a separate load-generator process (aiohttp, closed loop, `--connections` keep-alive
   connections): first `/health` for `--health-seconds` (the ceiling of this server and
   client), then orders of one unit each, every request with its own Idempotency-Key and
   buyers taken in turn, until the item is sold out and `--sold-out-seconds` after.
4. Reconciles in the database: units held + units left = the initial stock, one order per
   accepted answer, nothing oversold.

Figures (printed and written to bench/results/orders_hot_item.json): accepted orders per
second while stock lasts with p50/p99 latency of accepted orders, and the sold-out refusal
rate (409 sold_out per second once sold out) with its p99.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import secrets
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

RESULTS = Path(__file__).parent / "results" / "orders_hot_item.json"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PRICE = 180_000
SHIPPING = {
    "name": "Trần Thị Bích",
    "phone": "0912345678",
    "address": "12 Lý Tự Trọng, phường Ninh Kiều, Cần Thơ",
}


# ---- Set-up -----------------------------------------------------------------------------


async def seed(dsn: str, units: int, buyers: int) -> dict[str, Any]:
    """The hot item and its buyers, inserted directly (no HTTP): set-up is not measured."""
    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    household_id, product_id, variant_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        """INSERT INTO households (id, head_name, members_count, commune_code, province_code,
               admin_version, village, phone, national_id_hash, national_id_encrypted)
           VALUES ($1, 'Nguyễn Văn Thành', 4, '19996', '46', '2025-07',
               'Tổ dân phố Xuân Tháp', '0905123456', $2, 'bench-not-encrypted')""",
        household_id,
        secrets.token_hex(32),
    )
    await conn.execute(
        """INSERT INTO products (id, seller_kind, household_id, name, description, category,
               region, season_mask, province_code, commune_code, admin_version, status,
               search_text, min_price_amount)
           VALUES ($1, 'household', $2, 'Cam Xã Đoài', 'Cam chín cây, hái trong ngày', 'fruit',
               'Hương Trà, Huế', 4095, '46', '19996', '2025-07', 'listed', 'cam xa doai', $3)""",
        product_id,
        household_id,
        PRICE,
    )
    await conn.execute(
        """INSERT INTO variants (id, product_id, label, price_amount, available, is_active)
           VALUES ($1, $2, 'hộp 2 kg', $3, $4, true)""",
        variant_id,
        product_id,
        PRICE,
        units,
    )
    users, tokens, clear = [], [], []
    for n in range(buyers):
        user_id = uuid.uuid4()
        token = secrets.token_urlsafe(32)
        users.append((user_id, f"nguoi.mua.{n}.{user_id.hex[:6]}@example.vn", f"Người mua {n}"))
        tokens.append(
            (
                uuid.uuid4(),
                user_id,
                hashlib.sha256(token.encode()).hexdigest(),
                now + timedelta(days=1),
                now,
            )
        )
        clear.append(token)
    await conn.executemany(
        """INSERT INTO users (id, login, display_name, role, password_hash, is_active)
           VALUES ($1, $2, $3, 'buyer', 'not-a-password', true)""",
        users,
    )
    await conn.executemany(
        """INSERT INTO api_tokens (id, user_id, token_hash, expires_at, last_used_at)
           VALUES ($1, $2, $3, $4, $5)""",
        tokens,
    )
    await conn.close()
    return {"variant_id": str(variant_id), "tokens": clear}


async def reconcile(dsn: str, variant_id: str, units: int) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    left = await conn.fetchval(
        "SELECT available FROM variants WHERE id = $1", uuid.UUID(variant_id)
    )
    held = await conn.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM stock_holds"
        " WHERE variant_id = $1 AND released_at IS NULL",
        uuid.UUID(variant_id),
    )
    orders = await conn.fetchval("SELECT count(*) FROM orders")
    lines = await conn.fetchval("SELECT coalesce(sum(quantity), 0) FROM order_lines")
    keys = await conn.fetchval(
        "SELECT count(*) FROM idempotency_records"
        " WHERE status = 'completed' AND order_id IS NOT NULL"
    )
    await conn.close()
    return {
        "initial_stock": units,
        "left": int(left),
        "held": int(held),
        "orders": int(orders),
        "line_units": int(lines),
        "completed_keys_with_order": int(keys),
        "oversold": max(0, int(held) + int(left) - units) + max(0, -int(left)),
    }


# ---- The load generator (its own process) -----------------------------------------------


async def health(base: str, seconds: float, connections: int) -> dict[str, Any]:
    import aiohttp  # noqa: PLC0415 - only the load-generator process needs it

    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as client:
        deadline = time.perf_counter() + seconds

        async def one() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with client.get("/health") as response:
                    await response.read()
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(one() for _ in range(connections)))
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / seconds, 1),
        "p99_ms": round(percentile(latencies, 0.99), 2),
    }


async def orders(plan: dict[str, Any]) -> dict[str, Any]:
    """Closed loop until sold out, then `sold_out_seconds` more; every answer is kept."""
    import aiohttp  # noqa: PLC0415

    tokens: list[str] = plan["tokens"]
    body = json.dumps(
        {
            "lines": [{"variant_id": plan["variant_id"], "quantity": 1}],
            "payment_method": "vietqr",
            "shipping": SHIPPING,
        }
    ).encode()
    accepted: list[tuple[float, float]] = []
    refused: list[tuple[float, float]] = []
    unexpected: dict[str, int] = {}
    sold_out_at: list[float] = []
    turn = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=plan["connections"])
    async with aiohttp.ClientSession(base_url=plan["base"], connector=connector) as client:
        started = time.perf_counter()

        async def one() -> None:
            while (
                not sold_out_at or time.perf_counter() < sold_out_at[0] + plan["sold_out_seconds"]
            ):
                token = tokens[next(turn) % len(tokens)]
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": uuid.uuid4().hex,
                    "Content-Type": "application/json",
                }
                sent = time.perf_counter()
                async with client.post("/api/orders", data=body, headers=headers) as response:
                    payload = await response.read()
                done = time.perf_counter()
                if response.status == 201:
                    accepted.append((done - started, (done - sent) * 1000))
                elif response.status == 409 and b'"sold_out"' in payload:
                    refused.append((done - started, (done - sent) * 1000))
                    if not sold_out_at:
                        sold_out_at.append(done)
                else:
                    key = f"{response.status} {payload[:120].decode(errors='replace')}"
                    unexpected[key] = unexpected.get(key, 0) + 1
                    if sum(unexpected.values()) > 1000:
                        return

        await asyncio.gather(*(one() for _ in range(plan["connections"])))
    sale_seconds = max((t for t, _ in accepted), default=0.0)
    after = [(t, ms) for t, ms in refused if t > sale_seconds]
    window = plan["sold_out_seconds"]
    return {
        "accepted": len(accepted),
        "sale_seconds": round(sale_seconds, 3),
        "accepted_per_s": round(len(accepted) / sale_seconds, 1) if sale_seconds else 0.0,
        "p50_accepted_ms": round(percentile([ms for _, ms in accepted], 0.50), 2),
        "p99_accepted_ms": round(percentile([ms for _, ms in accepted], 0.99), 2),
        "refused_sold_out": len(refused),
        "refused_during_sale": len(refused) - len(after),
        "sold_out_per_s": round(len(after) / window, 1),
        "p99_sold_out_ms": round(percentile([ms for _, ms in after], 0.99), 2),
        "unexpected": unexpected,
    }


def run_load_generator(plan: dict[str, Any]) -> dict[str, Any]:
    """In a separate process, so the client's CPU is not the server's."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(plan, handle)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--load-generator", handle.name],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        Path(handle.name).unlink()
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ---- The server -------------------------------------------------------------------------


def start_server(
    sqlalchemy_url: str, port: int, workers: int, var_dir: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MARKETPLACE_MODE": "embedded",
        "DATABASE_URL": sqlalchemy_url,
        "REDIS_URL": REDIS_URL,
        "MARKETPLACE_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
        "DATABASE_POOL_SIZE": "20",
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
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--buyers", type=int, default=512)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--sold-out-seconds", type=float, default=5)
    parser.add_argument("--health-seconds", type=float, default=5)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--load-generator")
    args = parser.parse_args()
    if args.load_generator:
        plan = json.loads(Path(args.load_generator).read_text())
        result = {
            "health": asyncio.run(
                health(plan["base"], plan["health_seconds"], plan["connections"])
            ),
            "orders": asyncio.run(orders(plan)),
        }
        print(json.dumps(result))
        return

    from marketplace.schema import upgrade_to_head  # noqa: PLC0415

    name = f"mp_bench_orders_{uuid.uuid4().hex[:8]}"
    dsn = asyncio.run(create_database(name))
    sqlalchemy_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    server = None
    try:
        upgrade_to_head(sqlalchemy_url)
        seeded = asyncio.run(seed(dsn, args.units, args.buyers))
        port = free_port()
        with tempfile.TemporaryDirectory() as var_dir:
            server = start_server(sqlalchemy_url, port, args.server_workers, var_dir)
            base = f"http://127.0.0.1:{port}"
            wait_ready(base)
            measured = run_load_generator(
                {
                    "base": base,
                    "connections": args.connections,
                    "sold_out_seconds": args.sold_out_seconds,
                    "health_seconds": args.health_seconds,
                    **seeded,
                }
            )
            server.terminate()
            server.wait(timeout=30)
            server = None
        checks = asyncio.run(reconcile(dsn, seeded["variant_id"], args.units))
        placed = measured["orders"]
        result = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "load_average_at_end": os.getloadavg(),
            },
            "server": (
                f"uvicorn --factory marketplace.app:create_app --workers {args.server_workers}"
            ),
            "load_generator": "aiohttp, separate process, closed loop",
            "connections": args.connections,
            "buyers": args.buyers,
            **placed,
            "health_per_s": measured["health"]["per_s"],
            "health_p99_ms": measured["health"]["p99_ms"],
            "reconciliation": checks,
            "lost_orders": placed["accepted"] - checks["orders"],
            "sold": checks["held"],
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps(result, indent=2, ensure_ascii=False))
        ok = (
            checks["oversold"] == 0
            and checks["held"] + checks["left"] == args.units
            and placed["accepted"] == checks["orders"] == checks["held"]
            and not placed["unexpected"]
        )
        if not ok:
            raise SystemExit("reconciliation failed: see the figures above")
    finally:
        if server is not None:
            server.terminate()
        asyncio.run(drop_database(name))


if __name__ == "__main__":
    main()
