"""Where a flash sale's CPU goes: CPU milliseconds per request, by kind of request, in the
server, in PostgreSQL and in the load generator.

    uv run python bench/request_cost.py                 # 8 s per kind of request
    uv run python bench/request_cost.py --seconds 4 --only order_accepted

On a 2-core machine every process shares the same two cores, so requests per second follow
the CPU each request costs everywhere. This says which part to make cheaper. One server
process (`uvicorn --factory marketplace.app:create_app`, production settings, access log
off), a separate load-generator process (aiohttp, closed loop, `--connections`), the local
PostgreSQL and Redis, a database of its own. Kinds of request:

- `health`: GET /health, no authentication, no database (the floor of the stack);
- `me`: GET /api/auth/me, the token check and nothing else;
- `order_sold_out`: POST /api/orders for a pinned item with nothing left;
- `order_accepted`: POST /api/orders for a pinned item with plenty left (group commit).

CPU is read from /proc: the server's process, every `postgres` process (backends and
background writers), the load generator's own. Figures in bench/results/request_cost.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from flash_sale import SHIPPING, open_sale, run_load_generator, sale_server
from harness import percentile

RESULTS = Path(__file__).parent / "results" / "request_cost.json"
KINDS = ("health", "me", "order_sold_out", "order_accepted")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def postgres_cpu_seconds() -> float:
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        if stat.split(" ", 2)[1].startswith("(postgres"):
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


# ---- The load generator (its own process) -----------------------------------------------


async def drive(plan: dict[str, Any]) -> dict[str, Any]:
    import aiohttp  # noqa: PLC0415 - only the load generator needs it

    kind, tokens = plan["kind"], plan["tokens"]
    body = json.dumps(
        {
            "lines": [{"livestream_item_id": plan["item_id"], "quantity": 1}],
            "payment_method": "vietqr",
            "shipping": SHIPPING,
        }
    ).encode()
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    turn = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=plan["connections"])
    async with aiohttp.ClientSession(base_url=plan["base"], connector=connector) as client:

        async def request(n: int) -> int:
            token = tokens[n % len(tokens)]
            if kind == "health":
                async with client.get("/health") as response:
                    await response.read()
                    return response.status
            headers = {"Authorization": f"Bearer {token}"}
            if kind == "me":
                async with client.get("/api/auth/me", headers=headers) as response:
                    await response.read()
                    return response.status
            headers |= {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
            async with client.post("/api/orders", data=body, headers=headers) as response:
                await response.read()
                return response.status

        async def one(deadline: float) -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                status = await request(next(turn))
                latencies.append((time.perf_counter() - sent) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

        # Warm-up: connections opened, first-use caches filled; not measured.
        warm = time.perf_counter() + 1
        await asyncio.gather(*(one(warm) for _ in range(plan["connections"])))
        latencies.clear()
        statuses.clear()
        server_cpu, postgres_cpu, own_cpu = (
            cpu_seconds(plan["server_pid"]),
            postgres_cpu_seconds(),
            time.process_time(),
        )
        started = time.perf_counter()
        deadline = started + plan["seconds"]
        await asyncio.gather(*(one(deadline) for _ in range(plan["connections"])))
        seconds = time.perf_counter() - started
        server_cpu = cpu_seconds(plan["server_pid"]) - server_cpu
        postgres_cpu = postgres_cpu_seconds() - postgres_cpu
        own_cpu = time.process_time() - own_cpu
    n = len(latencies)
    return {
        "kind": kind,
        "requests": n,
        "per_s": round(n / seconds, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "server_cpu_ms": round(server_cpu * 1000 / n, 3),
        "postgres_cpu_ms": round(postgres_cpu * 1000 / n, 3),
        "load_generator_cpu_ms": round(own_cpu * 1000 / n, 3),
    }


# ---- The run ----------------------------------------------------------------------------


async def sell_out(base: str, token: str, item_id: str) -> None:
    """The one unit of the sold-out item, bought before measuring."""
    import httpx  # noqa: PLC0415

    body = {
        "lines": [{"livestream_item_id": item_id, "quantity": 1}],
        "payment_method": "vietqr",
        "shipping": SHIPPING,
    }
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
    async with httpx.AsyncClient(base_url=base) as client:
        answer = await client.post("/api/orders", json=body, headers=headers)
    if answer.status_code != 201:
        raise RuntimeError(f"could not sell the one unit: {answer.status_code} {answer.text}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--buyers", type=int, default=20_000)
    parser.add_argument("--only", choices=KINDS, action="append")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--load-generator", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_generator:
        plan = json.loads(Path(args.load_generator).read_text())
        Path(plan["out"]).write_text(json.dumps(asyncio.run(drive(plan))))
        return

    results: list[dict[str, Any]] = []
    with sale_server("mp_bench_cost", args.buyers, workers=1) as sale:
        dsn, sqlalchemy_url, seeded = sale.dsn, sale.sqlalchemy_url, sale.seeded
        plenty = asyncio.run(open_sale(sqlalchemy_url, dsn, seeded, 0, 2 * args.buyers))
        none_left = asyncio.run(open_sale(sqlalchemy_url, dsn, seeded, 1, 1))
        asyncio.run(sell_out(sale.base, seeded["tokens"][-1], none_left))
        for kind in args.only or KINDS:
            measured = run_load_generator(
                {
                    "kind": kind,
                    "base": sale.base,
                    "connections": args.connections,
                    "seconds": args.seconds,
                    "item_id": plenty if kind == "order_accepted" else none_left,
                    "tokens": seeded["tokens"][:-1],
                    "server_pid": sale.server.pid,
                },
                script=__file__,
            )
            print(json.dumps(measured), flush=True)
            results.append(measured)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "server": "uvicorn --factory marketplace.app:create_app (one process)",
        "load_generator": f"aiohttp, separate process, closed loop, {args.connections} connections",
        "seconds_per_kind": args.seconds,
        "cpus": os.cpu_count(),
        "kinds": results,
    }
    args.output.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
