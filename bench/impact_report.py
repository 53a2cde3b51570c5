"""Officials' reports under load, over 1,000,000 attribution rows, and the cost of keeping the
aggregates current.

    uv run python bench/impact_report.py [--rows 1000000] [--households 2000] [--seconds 20]
        [--client aiohttp|httpx] [--same-request]

What it does, on a database of its own (created, migrated, dropped at the end):
1. 2,000 households in 3 provinces (10 communes each), one review each (poor, near-poor, ...),
   and 1,000,000 ledger rows over 24 months loaded with COPY, then every aggregate built by
   `ImpactService.rebuild_aggregates` (the same code the income-share job runs).
2. The production server as a user runs it (`uvicorn --factory marketplace.app:create_app`,
   2 worker processes) in a subprocess, and a separate load-generator process (aiohttp) with
   16 concurrent connections calling, for `--seconds` each, a province official's province
   summary (12 months) and a commune official's household list (12 months, 50 a page),
   each request drawn at random from the 3 province or 30 commune officials and the 13
   twelve-month windows of the data (so no one URL is asked over and over), then `/health`
   of the same server as the ceiling. The same requests are then sent over one connection
   for 5 s each, to show the server's own latency apart from queueing on a 2-core machine
   shared with the load generator. Server and database CPU per request come from /proc.
3. 10,000 new ledger rows of the current month (one day's settlements on a busy platform),
   loaded with COPY, then the time for `ImpactService.refresh_entries` to bring every
   household-month and area aggregate up to date; and, separately, the same 10,000 rows
   delivered as 2,500 `record_event` calls (4 lines each) from 4 concurrent workers, which
   write ledger and aggregates in one transaction per event as production does.

Figures are printed and written to bench/results/impact_report.json, with the load average
(the machine is shared: compare the reads with `/health` of the same run). Goals: p99 <= 50 ms
for both reads, aggregates current <= 5 s after 10,000 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from harness import create_database, drop_database, free_port, percentile, wait_ready

RESULTS = Path(__file__).parent / "results" / "impact_report.json"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PROVINCES = ("92", "46", "01")
COMMUNES_PER_PROVINCE = 10
MONTHS = 24
SINGLE_SECONDS = 5.0
CURRENT_MONTH = date(2026, 11, 1)
STATUSES = (
    ("poor", 0.30),
    ("near_poor", 0.20),
    ("newly_escaped", 0.10),
    ("average_living_standard", 0.10),
    ("not_poor", 0.25),
    ("unreviewed", 0.05),
)
UNUSABLE_PASSWORD_HASH = "!"  # noqa: S105 - not a secret: no password hashes to it
"""No argon2 hash matches it: the bench's officials use issued tokens, never a password."""
CATEGORIES = ("fruit", "vegetable", "rice_grain", "processed", "seafood")


def _months() -> list[date]:
    out, month = [], CURRENT_MONTH
    for _ in range(MONTHS):
        out.append(month)
        month = date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
    return sorted(out)


# ---- Set-up -----------------------------------------------------------------------------


async def seed(dsn: str, households: int, rows: int, rng: random.Random) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    communes: dict[str, list[tuple[str, str]]] = {}
    for province in PROVINCES:
        found = await conn.fetch(
            "SELECT code, area FROM communes WHERE admin_version = '2025-07' "
            "AND province_code = $1 ORDER BY code LIMIT $2",
            province,
            COMMUNES_PER_PROVINCE,
        )
        communes[province] = [(r["code"], r["area"]) for r in found]
    places = [(p, c, a) for p, cs in communes.items() for c, a in cs]
    now = datetime.now(UTC)

    household_rows, review_rows, facts = [], [], []
    for n in range(households):
        province, commune, area = places[n % len(places)]
        hid = uuid.uuid4()
        members = rng.randint(1, 6)
        status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
        income = None if rng.random() < 0.1 else rng.randrange(900_000, 2_600_000, 10_000)
        household_rows.append(
            (
                hid,
                f"Hộ {n}",
                members,
                commune,
                province,
                "2025-07",
                "Thôn 1",
                f"09{n:08d}",
                f"{n:064d}",
                "encrypted",
                now,
                now,
            )
        )
        if status != "unreviewed":
            review_rows.append(
                (
                    uuid.uuid4(),
                    hid,
                    status,
                    date(2024, 12, 15),
                    "07/2021/ND-CP",
                    f"{n}/QĐ",
                    "UBND",
                    income,
                    False,
                    now,
                    now,
                )
            )
        facts.append((hid, members, commune, province, area, status, income))
    await conn.copy_records_to_table(
        "households",
        records=household_rows,
        columns=[
            "id",
            "head_name",
            "members_count",
            "commune_code",
            "province_code",
            "admin_version",
            "village",
            "phone",
            "national_id_hash",
            "national_id_encrypted",
            "created_at",
            "updated_at",
        ],
    )
    await conn.copy_records_to_table(
        "household_status_entries",
        records=review_rows,
        columns=[
            "id",
            "household_id",
            "status",
            "review_date",
            "standard_code",
            "decision_number",
            "deciding_authority",
            "income_per_person_month",
            "mismatch",
            "created_at",
            "updated_at",
        ],
    )
    started = time.perf_counter()
    await copy_ledger(conn, facts, rows, _months(), rng)
    copy_seconds = time.perf_counter() - started
    await conn.execute("ANALYZE")
    await conn.close()
    return {"communes": communes, "facts": facts, "copy_seconds": copy_seconds}


async def copy_ledger(
    conn: asyncpg.Connection,
    facts: list[tuple[Any, ...]],
    rows: int,
    months: list[date],
    rng: random.Random,
    *,
    ids: list[uuid.UUID] | None = None,
) -> None:
    now = datetime.now(UTC)
    batch: list[tuple[Any, ...]] = []
    for _ in range(rows):
        hid, members, commune, province, area, status, income = facts[rng.randrange(len(facts))]
        month = months[rng.randrange(len(months))]
        day = month + timedelta(days=rng.randrange(28))
        entry_id = uuid.uuid4()
        if ids is not None:
            ids.append(entry_id)
        batch.append(
            (
                entry_id,
                uuid.uuid4(),
                "sale",
                uuid.uuid4(),
                uuid.uuid4(),
                hid,
                uuid.uuid4(),
                rng.choice(CATEGORIES),
                rng.randrange(20_000, 800_000, 1_000),
                status,
                income,
                members,
                area,
                commune,
                province,
                "2025-07",
                day,
                datetime(day.year, day.month, day.day, 3, tzinfo=UTC),
                now,
                now,
            )
        )
        if len(batch) >= 50_000:
            await _copy(conn, batch)
            batch = []
    if batch:
        await _copy(conn, batch)


async def _copy(conn: asyncpg.Connection, batch: list[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(
        "attribution_entries",
        records=batch,
        columns=[
            "id",
            "event_id",
            "kind",
            "order_id",
            "order_line_id",
            "household_id",
            "product_id",
            "category",
            "amount",
            "poverty_status",
            "income_per_person_month",
            "members_count",
            "area",
            "commune_code",
            "province_code",
            "admin_version",
            "sale_date",
            "booked_at",
            "created_at",
            "updated_at",
        ],
    )


def _settings(sqlalchemy_url: str) -> Any:
    from marketplace.settings import (  # noqa: PLC0415
        DatabaseSettings,
        RedisSettings,
        SecuritySettings,
        Settings,
    )

    return Settings(
        database=DatabaseSettings(url=sqlalchemy_url, pool_size=10, max_overflow=10),
        redis=RedisSettings(url=REDIS_URL),
        security=SecuritySettings(secret_key="bench-" + "x" * 40),
        log_level="WARNING",
    )


async def build_aggregates(sqlalchemy_url: str) -> float:
    from marketplace.db import create_engine, create_sessionmaker  # noqa: PLC0415
    from marketplace.impact.service import ImpactService  # noqa: PLC0415
    from marketplace.jobs import NullSender  # noqa: PLC0415
    from marketplace.unit_of_work import UnitOfWork  # noqa: PLC0415

    settings = _settings(sqlalchemy_url)
    engine = create_engine(settings.database)
    started = time.perf_counter()
    async with UnitOfWork(create_sessionmaker(engine), NullSender()) as uow:
        await ImpactService(uow, settings).rebuild_aggregates()
        await uow.commit()
    elapsed = time.perf_counter() - started
    await engine.dispose()
    # What autovacuum does after a bulk change: planner statistics for the new rows.
    conn = await asyncpg.connect(sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute("ANALYZE")
    await conn.close()
    return elapsed


async def officials(
    sqlalchemy_url: str, communes: dict[str, list[tuple[str, str]]]
) -> dict[str, list[tuple[str, str]]]:
    """An official of each province and of each commune (code, token), tokens issued by the
    real service; the first of each list is province 92's and its first commune's."""
    from marketplace.accounts.models import JurisdictionLevel, Role, User  # noqa: PLC0415
    from marketplace.accounts.service import AccountService  # noqa: PLC0415
    from marketplace.db import create_engine, create_sessionmaker  # noqa: PLC0415
    from marketplace.jobs import NullSender  # noqa: PLC0415
    from marketplace.unit_of_work import UnitOfWork  # noqa: PLC0415

    settings = _settings(sqlalchemy_url)
    engine = create_engine(settings.database)
    places = [("province", JurisdictionLevel.PROVINCE, p) for p in PROVINCES] + [
        ("commune", JurisdictionLevel.COMMUNE, code) for p in PROVINCES for code, _ in communes[p]
    ]
    tokens: dict[str, list[tuple[str, str]]] = {"province": [], "commune": []}
    async with UnitOfWork(create_sessionmaker(engine), NullSender()) as uow:
        service = AccountService(uow, settings, None)
        for name, level, code in places:
            user = User(
                login=f"{name}.{code}.{uuid.uuid4().hex[:8]}@bench.vn",
                display_name=f"Cán bộ {name} {code}",
                role=Role.OFFICIAL,
                password_hash=UNUSABLE_PASSWORD_HASH,
                jurisdiction_level=level,
                jurisdiction_code=code,
                admin_version="2025-07",
            )
            uow.session.add(user)
            await uow.session.flush()
            tokens[name].append((code, (await service.issue_token(user, ip=None)).token))
        await uow.commit()
    await engine.dispose()
    return tokens


# ---- Refresh after new rows -------------------------------------------------------------


async def refresh_after_copy(
    dsn: str, sqlalchemy_url: str, facts: list[tuple[Any, ...]], rows: int
) -> dict[str, float]:
    from marketplace.db import create_engine, create_sessionmaker  # noqa: PLC0415
    from marketplace.impact.service import ImpactService  # noqa: PLC0415
    from marketplace.jobs import NullSender  # noqa: PLC0415
    from marketplace.unit_of_work import UnitOfWork  # noqa: PLC0415

    conn = await asyncpg.connect(dsn)
    ids: list[uuid.UUID] = []
    await copy_ledger(conn, facts, rows, [CURRENT_MONTH], random.Random(7), ids=ids)
    await conn.close()
    settings = _settings(sqlalchemy_url)
    engine = create_engine(settings.database)
    started = time.perf_counter()
    async with UnitOfWork(create_sessionmaker(engine), NullSender()) as uow:
        refreshed = await ImpactService(uow, settings).refresh_entries(ids)
        await uow.commit()
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return {"refresh_seconds": elapsed, "household_months_refreshed": refreshed}


async def record_events(
    sqlalchemy_url: str, facts: list[tuple[Any, ...]], rows: int, workers: int = 4
) -> dict[str, float]:
    from marketplace.db import create_engine, create_sessionmaker  # noqa: PLC0415
    from marketplace.impact.events import PaymentSettled, SettledLine  # noqa: PLC0415
    from marketplace.impact.service import ImpactService  # noqa: PLC0415
    from marketplace.jobs import NullSender  # noqa: PLC0415
    from marketplace.unit_of_work import UnitOfWork  # noqa: PLC0415

    settings = _settings(sqlalchemy_url)
    engine = create_engine(settings.database)
    maker = create_sessionmaker(engine)
    rng = random.Random(11)
    lines_per_event = 4
    events = []
    for _ in range(rows // lines_per_event):
        lines = []
        for _ in range(lines_per_event):
            hid = facts[rng.randrange(len(facts))][0]
            amount = rng.randrange(20_000, 800_000, 1_000)
            lines.append(
                SettledLine(
                    order_line_id=uuid.uuid4(),
                    net_amount=amount,
                    gross_amount=amount,
                    fee_amount=0,
                    product_id=uuid.uuid4(),
                    category=rng.choice(CATEGORIES),
                    household_id=hid,
                )
            )
        events.append(
            PaymentSettled(
                event_id=uuid.uuid4(),
                order_id=uuid.uuid4(),
                settled_at=datetime(2026, 11, 20, 3, tzinfo=UTC),
                method="vietqr",
                lines=tuple(lines),
            )
        )
    queue: asyncio.Queue[PaymentSettled] = asyncio.Queue()
    for event in events:
        queue.put_nowait(event)

    async def work() -> None:
        while not queue.empty():
            event = queue.get_nowait()
            async with UnitOfWork(maker, NullSender()) as uow:
                await ImpactService(uow, settings).record_event(event)
                await uow.commit()

    started = time.perf_counter()
    await asyncio.gather(*(work() for _ in range(workers)))
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return {
        "record_event_seconds": elapsed,
        "events": len(events),
        "rows": len(events) * lines_per_event,
    }


# ---- Load ---------------------------------------------------------------------------------


async def load(
    base: str,
    requests: list[tuple[str, str]],
    *,
    seconds: float,
    connections: int,
    client_kind: str,
    seed: int,
) -> dict[str, Any]:
    """Closed loop: `connections` clients each sending the next request when one answers,
    each request drawn at random from `requests` (path, token)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    rng = random.Random(seed)
    get = await _client(base, connections, client_kind)
    try:
        for path, token in requests[:3]:  # connections opened and plans cached, as a server's
            await get(path, token)
        deadline = time.perf_counter() + seconds

        async def one() -> None:
            while time.perf_counter() < deadline:
                path, token = requests[rng.randrange(len(requests))]
                started = time.perf_counter()
                status = await get(path, token)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    finally:
        await get.close()
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "statuses": statuses,
    }


async def _client(base: str, connections: int, kind: str) -> Any:
    """`await get(path, token)` -> status, the whole body read. aiohttp costs the load
    generator about a third of httpx's CPU per request, CPU the server shares on 2 cores;
    `--client httpx` repeats the earlier runs' client."""
    if kind == "httpx":
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        hx = httpx.AsyncClient(base_url=base, limits=limits, timeout=30)

        async def get_httpx(path: str, token: str) -> int:
            response = await hx.get(path, headers={"Authorization": f"Bearer {token}"})
            return response.status_code

        get_httpx.close = hx.aclose  # type: ignore[attr-defined]
        return get_httpx
    import aiohttp  # noqa: PLC0415 - dev group, only the load generator needs it

    session = aiohttp.ClientSession(
        base_url=base,
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=30),
    )

    async def get_aiohttp(path: str, token: str) -> int:
        async with session.get(path, headers={"Authorization": f"Bearer {token}"}) as response:
            await response.read()
            return response.status

    get_aiohttp.close = session.close  # type: ignore[attr-defined]
    return get_aiohttp


def run_load_generator(base: str, plan: dict[str, Any]) -> dict[str, Any]:
    """In a separate process, so the client's CPU is not the server's."""
    out = subprocess.run(
        [sys.executable, __file__, "--load-generator", json.dumps({"base": base, **plan})],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo.extend(int(c) for c in task.read_text().split())
    return pids


async def _backend_pids(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


def start_server(
    sqlalchemy_url: str, port: int, workers: int, var_dir: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
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


def windows() -> list[str]:
    """Every 12-month window of the 24 months with data."""
    months = _months()
    return [
        f"month_from={months[i]:%Y-%m}&month_to={months[i + 11]:%Y-%m}"
        for i in range(len(months) - 11)
    ]


def measure_reads(
    sqlalchemy_url: str,
    dsn: str,
    tokens: dict[str, list[tuple[str, str]]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Each request of a target is drawn at random: one of the officials (3 province, 30
    commune officials) and one of the 13 twelve-month windows, so neither the database nor
    any cache sees one URL over and over (`--same-request` sends the first one only, as the
    earlier runs did). Server and database CPU per request are read from /proc around each
    target: they hold still when the machine is loaded, where latency does not."""
    plan_targets: dict[str, list[tuple[str, str]]] = {
        "province_summary": [
            (f"/api/impact/provinces/{code}/summary?{w}", token)
            for code, token in tokens["province"]
            for w in windows()
        ],
        "commune_household_list": [
            (f"/api/impact/households?{w}&limit=50", token)
            for _, token in tokens["commune"]
            for w in windows()
        ],
        "health": [("/health", tokens["commune"][0][1])],
    }
    if args.same_request:
        window = "month_from=2025-12&month_to=2026-11"
        plan_targets["province_summary"] = [
            (
                f"/api/impact/provinces/{tokens['province'][0][0]}/summary?{window}",
                tokens["province"][0][1],
            )
        ]
        plan_targets["commune_household_list"] = [
            (f"/api/impact/households?{window}&limit=50", tokens["commune"][0][1])
        ]
    port = free_port()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as var_dir:
        server = start_server(sqlalchemy_url, port, args.server_workers, var_dir)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base)
            for name, requests in plan_targets.items():
                server_pids = _process_tree(server.pid)
                backends = asyncio.run(_backend_pids(dsn))
                server_cpu, db_cpu = _cpu_seconds(server_pids), _cpu_seconds(backends)
                load_before = os.getloadavg()[0]
                figures = run_load_generator(
                    base,
                    {
                        "seconds": args.seconds,
                        "connections": args.connections,
                        "client": args.client,
                        "requests": requests,
                    },
                )
                backends = asyncio.run(_backend_pids(dsn))
                count = figures["many"]["requests"] + figures["one"]["requests"] + 3
                figures["many"]["server_cpu_ms_per_request"] = round(
                    (_cpu_seconds(server_pids) - server_cpu) * 1000 / count, 3
                )
                figures["many"]["database_cpu_ms_per_request"] = round(
                    (_cpu_seconds(backends) - db_cpu) * 1000 / count, 3
                )
                figures["many"]["load_average_1m_before_after"] = [
                    round(load_before, 2),
                    round(os.getloadavg()[0], 2),
                ]
                results[name] = {
                    **figures["many"],
                    "one_connection_p50_ms": figures["one"]["p50_ms"],
                    "one_connection_p99_ms": figures["one"]["p99_ms"],
                }
                print(name, json.dumps(results[name]), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


def run(args: argparse.Namespace, sqlalchemy_url: str, dsn: str) -> dict[str, Any]:
    from marketplace.observability import configure_logging  # noqa: PLC0415
    from marketplace.schema import upgrade_to_head  # noqa: PLC0415

    # The services log each event at INFO; a production worker would too, but the figures
    # here are about the database work, so only warnings reach the terminal.
    configure_logging("WARNING", json=True)
    upgrade_to_head(sqlalchemy_url)
    started = time.perf_counter()
    seeded = asyncio.run(seed(dsn, args.households, args.rows, random.Random(2026)))
    print(
        f"seeded {args.rows:,} ledger rows in {time.perf_counter() - started:.1f} s "
        f"(COPY {seeded['copy_seconds']:.1f} s)",
        flush=True,
    )
    rebuild_seconds = asyncio.run(build_aggregates(sqlalchemy_url))
    print(f"aggregates built from scratch in {rebuild_seconds:.1f} s", flush=True)
    tokens = asyncio.run(officials(sqlalchemy_url, seeded["communes"]))
    load_at_reads = os.getloadavg()
    reads = measure_reads(sqlalchemy_url, dsn, tokens, args)
    refresh = asyncio.run(refresh_after_copy(dsn, sqlalchemy_url, seeded["facts"], args.new_rows))
    events = asyncio.run(record_events(sqlalchemy_url, seeded["facts"], args.new_rows))
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before_reads": load_at_reads,
            "load_average_at_end": os.getloadavg(),
        },
        "client": args.client,
        "requests_vary": not args.same_request,
        "ledger_rows": args.rows,
        "households": args.households,
        "provinces": len(PROVINCES),
        "connections": args.connections,
        "server": f"uvicorn --factory marketplace.app:create_app --workers {args.server_workers}",
        "seconds_per_target": args.seconds,
        "province_summary": reads["province_summary"],
        "commune_household_list": reads["commune_household_list"],
        "health": reads["health"],
        "aggregates_full_build_seconds": round(rebuild_seconds, 2),
        "new_rows": args.new_rows,
        "refresh_after_new_rows_seconds": round(refresh["refresh_seconds"], 3),
        "household_months_refreshed": refresh["household_months_refreshed"],
        "record_event_new_rows_seconds": round(events["record_event_seconds"], 2),
        "record_event_events": events["events"],
        "goals": {"p99_ms": 50, "refresh_seconds": 5},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--households", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--new-rows", type=int, default=10_000)
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp")
    parser.add_argument(
        "--same-request", action="store_true", help="one URL per target, as the first runs did"
    )
    parser.add_argument("--keep-database", action="store_true", help="for profiling afterwards")
    parser.add_argument("--load-generator")
    args = parser.parse_args()
    if args.load_generator:
        plan = json.loads(args.load_generator)
        requests = [tuple(r) for r in plan["requests"]]
        many = asyncio.run(
            load(
                plan["base"],
                requests,
                seconds=plan["seconds"],
                connections=plan["connections"],
                client_kind=plan["client"],
                seed=1,
            )
        )
        # The same requests one at a time: the server's own latency, without queueing.
        one = asyncio.run(
            load(
                plan["base"],
                requests,
                seconds=SINGLE_SECONDS,
                connections=1,
                client_kind=plan["client"],
                seed=2,
            )
        )
        print(json.dumps({"many": many, "one": one}))
        return

    name = f"mp_bench_impact_{uuid.uuid4().hex[:8]}"
    dsn = asyncio.run(create_database(name))
    try:
        result = run(args, dsn.replace("postgresql://", "postgresql+asyncpg://", 1), dsn)
    finally:
        if args.keep_database:
            print(f"kept database {name}")
        else:
            asyncio.run(drop_database(name))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
