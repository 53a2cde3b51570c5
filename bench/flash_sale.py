"""A livestream flash sale: one pinned item, thousands of buyers, POST /api/orders until it is
sold out, then 5 s more; measured next to two ceilings of the same run.

    uv run python bench/flash_sale.py              # 10,000 units, 3 runs, median at the top
    uv run python bench/flash_sale.py --quick      # 1,000 units, 1 run (CI: fails on errors)
    uv run python bench/flash_sale.py --runs 1

Needs the local PostgreSQL (`BENCH_POSTGRES_DSN`) and Redis (`BENCH_REDIS_URL`, logical DB 11
by default; nothing is flushed: every key the run writes names its own fresh item).

What it does, on a database of its own (created, migrated, dropped at the end):
1. Set-up, not measured: a verified host, a household's product, `--buyers` buyer accounts
   with one bearer token each (rows bulk-inserted with the app's SHA-256 token digest, no
   argon2 since no buyer logs in). Per run, through `LivestreamService` as a host would:
   a session created, scheduled and taken live, and one item of `--units` units pinned with
   a per-buyer limit of 2.
2. The production server as a user runs it (`uvicorn --factory marketplace.app:create_app
   --workers 2`, production settings, access log off; embedded mode only so the secrets live
   in a temporary var dir) on the local PostgreSQL and Redis.
3. The naive ceiling, same database, server idle: a bare asyncpg loop, 16 connections, one
   transaction per order on tables of the bench's own (decrement with `available >= 1`,
   insert the order and its line, commit) until the same number of units is gone.
4. A separate load-generator process (aiohttp, `--connections` keep-alive connections,
   closed loop): `/health` for `--health-seconds` (the server's ceiling), then orders of
   one unit, each with its own Idempotency-Key and a buyer drawn at random (seeded) from
   all buyers, until sold out and `--sold-out-seconds` after. One request in 50 is sent a
   second time with the same key and body and must replay the first answer (a sold-out
   refusal decided from the item's sold-out flag is not stored, so its retry is refused
   afresh: sold out, or the buyer's limit once the database decides).
5. Exact reconciliation in the database: sold + left = initial, every accepted answer has
   its order row, no buyer above the limit, one order per Idempotency-Key.

Exits non-zero on oversell, lost order, unexpected error or a failed reconciliation, never
on speed. Figures in bench/results/flash_sale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from harness import create_database, drop_database, free_port, percentile, wait_ready

RESULTS = Path(__file__).parent / "results" / "flash_sale.json"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
PER_BUYER_LIMIT = 2
LIVE_PRICE = 150_000
REPLAY_EVERY = 50
SHIPPING = {
    "name": "Trần Thị Bích",
    "phone": "0912345678",
    "address": "12 Lý Tự Trọng, phường Ninh Kiều, Cần Thơ",
}
RULES = (
    "Quy định phiên live: chốt đơn qua ứng dụng, mỗi người tối đa 2 hộp. "
    "Đơn giữ hàng 15 phút; đổi trả trong 3 ngày nếu quả dập hỏng."
)
SERVER_WORKERS = 2


# ---- Set-up -----------------------------------------------------------------------------


async def seed_accounts(dsn: str, buyers: int) -> dict[str, Any]:
    """The host (verified by an admin), the household selling, and the buyers with tokens."""
    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    host_id, admin_id, household_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await conn.executemany(
        """INSERT INTO users (id, login, display_name, role, password_hash, is_active)
           VALUES ($1, $2, $3, $4, 'not-a-password', true)""",
        [
            (host_id, f"host.{host_id.hex[:8]}@example.vn", "Lê Thu Hà", "host"),
            (admin_id, f"admin.{admin_id.hex[:8]}@example.vn", "Quản trị", "admin"),
        ],
    )
    await conn.execute(
        """INSERT INTO host_verifications (id, host_user_id, document_kind, document_reference,
               status, submitted_at, reviewed_by_user_id, reviewed_at, review_note)
           VALUES ($1, $2, 'citizen_id', $3, 'approved', $4, $5, $4, '')""",
        uuid.uuid4(),
        host_id,
        f"kyc/{host_id}/cccd.jpg",
        now - timedelta(days=1),
        admin_id,
    )
    await conn.execute(
        """INSERT INTO households (id, head_name, members_count, commune_code, province_code,
               admin_version, village, phone, national_id_hash, national_id_encrypted)
           VALUES ($1, 'Nguyễn Văn Thành', 4, '19996', '46', '2025-07',
               'Tổ dân phố Xuân Tháp', '0905123456', $2, 'bench-not-encrypted')""",
        household_id,
        secrets.token_hex(32),
    )
    users, tokens, clear = [], [], []
    for n in range(buyers):
        user_id = uuid.uuid4()
        token = secrets.token_urlsafe(32)
        users.append((user_id, f"nguoi.mua.{n}.{user_id.hex[:6]}@example.vn", f"Người mua {n}"))
        # The app's token digest (accounts/credentials.token_digest): SHA-256 of the token.
        digest = hashlib.sha256(token.encode("ascii")).hexdigest()
        tokens.append((uuid.uuid4(), user_id, digest, now + timedelta(days=1), now))
        clear.append(token)
    await conn.copy_records_to_table(
        "users",
        records=[(*u, "buyer", "not-a-password", True, now, now) for u in users],
        columns=[
            "id",
            "login",
            "display_name",
            "role",
            "password_hash",
            "is_active",
            "created_at",
            "updated_at",
        ],
    )
    await conn.copy_records_to_table(
        "api_tokens",
        records=[(*t, now, now) for t in tokens],
        columns=[
            "id",
            "user_id",
            "token_hash",
            "expires_at",
            "last_used_at",
            "created_at",
            "updated_at",
        ],
    )
    await conn.execute("ANALYZE")
    await conn.close()
    return {"host_id": str(host_id), "household_id": str(household_id), "tokens": clear}


async def open_sale(
    sqlalchemy_url: str, dsn: str, seeded: dict[str, Any], run: int, units: int
) -> str:
    """A fresh product variant with `units` in stock, and a live session pinning it, made by
    the livestream service itself (the same checks and writes as the host's API)."""
    from redis.asyncio import Redis  # noqa: PLC0415 - the load generator needs none of this
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine  # noqa: PLC0415

    from marketplace.accounts.identity import AuthenticatedUser  # noqa: PLC0415
    from marketplace.accounts.models import Role  # noqa: PLC0415
    from marketplace.jobs import NullSender  # noqa: PLC0415
    from marketplace.livestreams.models import Platform  # noqa: PLC0415
    from marketplace.livestreams.service import (  # noqa: PLC0415
        ItemDraft,
        LivestreamService,
        SessionDraft,
    )
    from marketplace.unit_of_work import UnitOfWork  # noqa: PLC0415

    household_id = uuid.UUID(seeded["household_id"])
    product_id, variant_id = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        """INSERT INTO products (id, seller_kind, household_id, name, description, category,
               region, season_mask, province_code, commune_code, admin_version, status,
               search_text, min_price_amount)
           VALUES ($1, 'household', $2, 'Cam Xã Đoài', 'Cam chín cây, hái trong ngày', 'fruit',
               'Hương Trà, Huế', 4095, '46', '19996', '2025-07', 'listed', 'cam xa doai', $3)""",
        product_id,
        household_id,
        180_000,
    )
    await conn.execute(
        """INSERT INTO variants (id, product_id, label, price_amount, available, is_active)
           VALUES ($1, $2, 'hộp 2 kg', 180000, $3, true)""",
        variant_id,
        product_id,
        units,
    )
    await conn.close()

    engine = create_async_engine(sqlalchemy_url)
    redis = Redis.from_url(REDIS_URL)
    try:
        uow = UnitOfWork(async_sessionmaker(engine, expire_on_commit=False), NullSender())
        service = LivestreamService(uow, redis)
        host = AuthenticatedUser(
            id=uuid.UUID(seeded["host_id"]),
            role=Role.HOST,
            display_name="Lê Thu Hà",
            jurisdiction_level=None,
            jurisdiction_code=None,
            token_id=uuid.uuid4(),
        )
        now = datetime.now(UTC)
        created = await service.create_session(
            host,
            SessionDraft(
                title=f"Chợ phiên cam Hương Trà - giờ vàng {run + 1}",
                platform=Platform.FACEBOOK,
                scheduled_start_at=now + timedelta(minutes=1),
                scheduled_end_at=now + timedelta(hours=3),
                rules_text=RULES,
                household_ids=[household_id],
            ),
        )
        session_id = created.session.id
        await service.schedule(host, session_id)
        await service.go_live(host, session_id)
        pinned = await service.pin_item(
            host,
            session_id,
            ItemDraft(
                variant_id=variant_id,
                code="CAM1",
                live_price_amount=LIVE_PRICE,
                stock_cap=units,
                per_buyer_limit=PER_BUYER_LIMIT,
            ),
        )
        item_id = pinned.item.id
        await uow.commit()
        await uow.session.close()
    finally:
        await redis.aclose()
        await engine.dispose()
    return str(item_id)


HISTORY_ORDERS = 50_000
"""Orders the marketplace sold before the sale. A flash sale runs on a database with
history; on empty tables PostgreSQL plans its foreign-key checks as sequential scans while
the tables are tiny and keeps those plans on each connection as the tables grow (the checks
of one batch cost 40 ms at 1,000 orders). Both the server and the naive ceiling get the same
history."""


async def seed_history(dsn: str, household_id: str, orders: int = HISTORY_ORDERS) -> None:
    """`orders` completed one-line catalog orders of the household's earlier product, with
    their fulfilments, lines and sold holds; then ANALYZE, as a running database would be."""
    conn = await asyncpg.connect(dsn)
    product_id, variant_id = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        """INSERT INTO products (id, seller_kind, household_id, name, description, category,
               region, season_mask, province_code, commune_code, admin_version, status,
               search_text, min_price_amount)
           VALUES ($1, 'household', $2, 'Bưởi Thanh Trà', 'Vụ trước', 'fruit', 'Hương Trà, Huế',
               4095, '46', '19996', '2025-07', 'listed', 'buoi thanh tra', 90000)""",
        product_id,
        uuid.UUID(household_id),
    )
    await conn.execute(
        """INSERT INTO variants (id, product_id, label, price_amount, available, is_active)
           VALUES ($1, $2, 'quả 1,5 kg', 90000, 0, true)""",
        variant_id,
        product_id,
    )
    await conn.execute(
        """CREATE TEMP TABLE buyers AS
             SELECT (row_number() OVER (ORDER BY id)) - 1 AS n, id FROM users
              WHERE role = 'buyer'"""
    )
    await conn.execute(
        """CREATE TEMP TABLE history (g int, buyer_id uuid, order_id uuid, fulfilment_id uuid,
                                       line_id uuid, at timestamptz)"""
    )
    await conn.execute(
        """INSERT INTO history
           SELECT g, b.id, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),
                  now() - make_interval(mins => g)
             FROM generate_series(1, $1::int) AS g
             JOIN buyers AS b ON b.n = g % (SELECT count(*) FROM buyers)""",
        orders,
    )
    await conn.execute(
        """INSERT INTO orders (id, buyer_user_id, buyer_key, contact_phone, source, status,
               payment_method, payment_code, total_amount, paid_amount, refunded_amount,
               excess_amount, hold_expires_at, shipping_name, shipping_phone, shipping_address,
               paid_at, completed_at, created_at, updated_at)
           SELECT order_id, buyer_id, 'user:' || buyer_id, '0912345678', 'catalog',
                  'completed', 'vietqr', 'DH0' || lpad(g::text, 9, '0'), 90000, 90000, 0, 0,
                  at + interval '15 minutes', 'Người mua cũ', '0912345678', 'Huế',
                  at, at + interval '3 days', at, at
             FROM history"""
    )
    await conn.execute(
        """INSERT INTO fulfilments (id, order_id, seller_kind, household_id, status,
               subtotal_amount, created_at, updated_at)
           SELECT fulfilment_id, order_id, 'household', $1, 'delivered', 90000, at, at
             FROM history""",
        uuid.UUID(household_id),
    )
    await conn.execute(
        """INSERT INTO order_lines (id, order_id, fulfilment_id, position, variant_id,
               product_id, product_name, variant_label, category, quantity,
               unit_price_amount, line_amount, created_at, updated_at)
           SELECT line_id, order_id, fulfilment_id, 0, $1, $2, 'Bưởi Thanh Trà',
                  'quả 1,5 kg', 'fruit', 1, 90000, 90000, at, at
             FROM history""",
        variant_id,
        product_id,
    )
    await conn.execute(
        """INSERT INTO stock_holds (id, order_id, order_line_id, variant_id, buyer_key,
               quantity, expires_at, sold_at, created_at, updated_at)
           SELECT gen_random_uuid(), order_id, line_id, $1, 'history', 1,
                  at + interval '15 minutes', at, at, at
             FROM history""",
        variant_id,
    )
    await conn.execute("DROP TABLE history, buyers; ANALYZE")
    await conn.close()


async def seed(dsn: str, buyers: int) -> dict[str, Any]:
    """Accounts, then the history they bought."""
    seeded = await seed_accounts(dsn, buyers)
    await seed_history(dsn, seeded["household_id"])
    return seeded


# ---- The naive ceiling ------------------------------------------------------------------


async def naive_ceiling(dsn: str, units: int, connections: int = 16) -> dict[str, Any]:
    """One transaction per order, the least an ORM-free design can do: the decrement, the
    order row, its line row, one commit each; the hot row is locked from the decrement to
    the commit."""
    setup = await asyncpg.connect(dsn)
    await setup.execute(
        """CREATE TABLE IF NOT EXISTS bench_stock (
               id int PRIMARY KEY, available int NOT NULL CHECK (available >= 0));
           CREATE TABLE IF NOT EXISTS bench_orders (
               id uuid PRIMARY KEY, buyer int NOT NULL, total_amount bigint NOT NULL,
               created_at timestamptz NOT NULL DEFAULT now());
           CREATE TABLE IF NOT EXISTS bench_order_lines (
               id uuid PRIMARY KEY, order_id uuid NOT NULL REFERENCES bench_orders (id),
               quantity int NOT NULL, unit_price_amount bigint NOT NULL);
           TRUNCATE bench_order_lines, bench_orders, bench_stock;"""
    )
    await setup.execute(
        """INSERT INTO bench_orders (id, buyer, total_amount)
           SELECT gen_random_uuid(), g, 90000 FROM generate_series(1, $1::int) AS g""",
        HISTORY_ORDERS,
    )
    await setup.execute(
        """INSERT INTO bench_order_lines (id, order_id, quantity, unit_price_amount)
             SELECT gen_random_uuid(), id, 1, 90000 FROM bench_orders;
           ANALYZE bench_orders, bench_order_lines;"""
    )
    await setup.execute("INSERT INTO bench_stock VALUES (1, $1)", units)
    pool = await asyncpg.create_pool(dsn, min_size=connections, max_size=connections)
    assert pool is not None  # noqa: S101 - create_pool returns the pool once awaited
    accepted = 0

    async def one(worker: int) -> None:
        nonlocal accepted
        buyer = worker
        async with pool.acquire() as conn:
            while True:
                order_id = uuid.uuid4()
                async with conn.transaction():
                    left = await conn.fetchval(
                        "UPDATE bench_stock SET available = available - 1"
                        " WHERE id = 1 AND available >= 1 RETURNING available"
                    )
                    if left is None:
                        return
                    await conn.execute(
                        "INSERT INTO bench_orders (id, buyer, total_amount) VALUES ($1, $2, $3)",
                        order_id,
                        buyer,
                        LIVE_PRICE,
                    )
                    await conn.execute(
                        "INSERT INTO bench_order_lines (id, order_id, quantity, unit_price_amount)"
                        " VALUES ($1, $2, 1, $3)",
                        uuid.uuid4(),
                        order_id,
                        LIVE_PRICE,
                    )
                accepted += 1
                buyer += connections

    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(connections)))
    seconds = time.perf_counter() - started
    await pool.close()
    rows = await setup.fetchval("SELECT count(*) FROM bench_order_lines") - HISTORY_ORDERS
    await setup.close()
    if rows != units or accepted != units:
        raise RuntimeError(f"naive ceiling miscounted: {accepted} accepted, {rows} rows")
    return {"orders": accepted, "seconds": round(seconds, 3), "per_s": round(accepted / seconds, 1)}


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
                    if response.status != 200:
                        raise RuntimeError(f"/health answered {response.status}")
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(one() for _ in range(connections)))
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
    }


@dataclass
class _Answers:
    """Every answer of the order phase, classified as it arrives."""

    accepted: list[tuple[float, float]] = field(default_factory=list)
    accepted_orders: dict[str, str] = field(default_factory=dict)
    sold_out: list[tuple[float, float]] = field(default_factory=list)
    limit_reached: list[float] = field(default_factory=list)
    replays: dict[str, int] = field(default_factory=lambda: {"sent": 0, "matched": 0})
    unexpected: dict[str, int] = field(default_factory=dict)
    sold_out_at: float | None = None

    def note_unexpected(self, key: str) -> None:
        self.unexpected[key] = self.unexpected.get(key, 0) + 1

    def take(self, status: int, payload: bytes, key: str, at: float, ms: float) -> bool:
        """False for an unexpected answer."""
        if status == 201:
            self.accepted.append((at, ms))
            self.accepted_orders[key] = json.loads(payload)["id"]
        elif status == 409 and b'"sold_out"' in payload:
            self.sold_out.append((at, ms))
            if self.sold_out_at is None:
                self.sold_out_at = at
        elif status == 409 and b'"limit_reached"' in payload:
            self.limit_reached.append(ms)
        else:
            self.note_unexpected(f"{status} {payload[:160].decode(errors='replace')}")
            return False
        return True

    def summary(self, ended: float) -> dict[str, Any]:
        sale_seconds = max((t for t, _ in self.accepted), default=0.0)
        first_refusal = ended if self.sold_out_at is None else self.sold_out_at
        after = [ms for t, ms in self.sold_out if t > sale_seconds]
        window = max(ended - max(sale_seconds, first_refusal), 1e-9)
        latencies = [ms for _, ms in self.accepted]
        return {
            "accepted": len(self.accepted),
            "sale_seconds": round(sale_seconds, 3),
            "accepted_per_s": (
                round(len(self.accepted) / sale_seconds, 1) if sale_seconds else 0.0
            ),
            "p50_accepted_ms": round(percentile(latencies, 0.50), 2),
            "p99_accepted_ms": round(percentile(latencies, 0.99), 2),
            "max_accepted_ms": round(max(latencies, default=0.0), 2),
            "refused_sold_out": len(self.sold_out),
            "refused_sold_out_during_sale": len(self.sold_out) - len(after),
            "refused_limit_reached": len(self.limit_reached),
            "sold_out_seconds": round(window, 3),
            "sold_out_per_s": round(len(after) / window, 1),
            "p50_sold_out_ms": round(percentile(after, 0.50), 2),
            "p99_sold_out_ms": round(percentile(after, 0.99), 2),
            "replays": self.replays,
            "unexpected": self.unexpected,
            "accepted_orders": self.accepted_orders,
        }


async def orders(plan: dict[str, Any]) -> dict[str, Any]:
    """Closed loop until sold out, then `sold_out_seconds` more; every answer is classified.

    Expected answers: 201 (accepted), 409 sold_out, 409 limit_reached (a buyer drawn a third
    time). Anything else is an unexpected error."""
    import aiohttp  # noqa: PLC0415

    tokens: list[str] = plan["tokens"]
    body = json.dumps(
        {
            "lines": [{"livestream_item_id": plan["item_id"], "quantity": 1}],
            "payment_method": "vietqr",
            "shipping": SHIPPING,
        }
    ).encode()
    answers = _Answers()
    turn = iter(range(10**9))
    connector = aiohttp.TCPConnector(limit=plan["connections"])
    async with aiohttp.ClientSession(base_url=plan["base"], connector=connector) as client:
        started = time.perf_counter()

        async def send(token: str, key: str) -> tuple[int, bytes, bool]:
            headers = {
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": key,
                "Content-Type": "application/json",
            }
            async with client.post("/api/orders", data=body, headers=headers) as response:
                payload = await response.read()
                replayed = response.headers.get("Idempotent-Replayed") == "true"
            return response.status, payload, replayed

        def going() -> bool:
            if answers.sold_out_at is None:
                return sum(answers.unexpected.values()) <= 1000
            return time.perf_counter() - started < answers.sold_out_at + plan["sold_out_seconds"]

        async def one(worker: int) -> None:
            draw = random.Random(plan["seed"] * 1000 + worker)
            while going():
                n = next(turn)
                token = tokens[draw.randrange(len(tokens))]
                key = f"flash-{plan['seed']}-{n}-{uuid.uuid4().hex}"
                sent = time.perf_counter()
                status, payload, _ = await send(token, key)
                done = time.perf_counter()
                expected = answers.take(status, payload, key, done - started, (done - sent) * 1000)
                if expected and n % REPLAY_EVERY == 0:
                    # A client retrying after a lost answer: the first answer, not a new order.
                    answers.replays["sent"] += 1
                    again, again_payload, replayed = await send(token, key)
                    # A refusal for an item flagged sold out is not stored (nothing was
                    # attempted): its retry is decided afresh, and must be refused again
                    # (sold out, or the buyer's limit when the database decides).
                    fresh = status == 409 and b'"sold_out"' in payload and not replayed
                    if fresh:
                        consistent = again == 409 and (
                            b'"sold_out"' in again_payload or b'"limit_reached"' in again_payload
                        )
                    else:
                        consistent = again == status and again_payload == payload and replayed
                    if consistent:
                        answers.replays["matched"] += 1
                    else:
                        answers.note_unexpected(f"replay differs: {status} then {again}")

        await asyncio.gather(*(one(n) for n in range(plan["connections"])))
        ended = time.perf_counter() - started
    return answers.summary(ended)


def run_load_generator(plan: dict[str, Any], script: str = __file__) -> dict[str, Any]:
    """`script --load-generator` in a separate process, so the client's CPU is not the
    server's; the plan goes in and the result comes back as JSON files."""
    with tempfile.TemporaryDirectory() as scratch:
        plan_path, out_path = Path(scratch) / "plan.json", Path(scratch) / "out.json"
        plan_path.write_text(json.dumps({**plan, "out": str(out_path)}))
        subprocess.run([sys.executable, script, "--load-generator", str(plan_path)], check=True)
        result: dict[str, Any] = json.loads(out_path.read_text())
    return result


def load_generator_main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    result = {
        "health": asyncio.run(health(plan["base"], plan["health_seconds"], plan["connections"])),
        "orders": asyncio.run(orders(plan)),
    }
    Path(plan["out"]).write_text(json.dumps(result))


# ---- Reconciliation ---------------------------------------------------------------------


async def reconcile(
    dsn: str, item_id: str, units: int, accepted_orders: dict[str, str]
) -> dict[str, Any]:
    """Counted from the rows, independently of the answers: every unit is either still on
    the item or on exactly one order line, and every accepted answer is a durable order."""
    item = uuid.UUID(item_id)
    conn = await asyncpg.connect(dsn)
    left = await conn.fetchval("SELECT available FROM livestream_items WHERE id = $1", item)
    line_rows = await conn.fetch(
        "SELECT l.order_id, l.quantity, o.buyer_key FROM order_lines l"
        " JOIN orders o ON o.id = l.order_id WHERE l.livestream_item_id = $1",
        item,
    )
    held = await conn.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM stock_holds"
        " WHERE livestream_item_id = $1 AND released_at IS NULL",
        item,
    )
    counted = await conn.fetchval(
        "SELECT coalesce(sum(quantity), 0) FROM livestream_buyer_counts WHERE item_id = $1",
        item,
    )
    counted_max = await conn.fetchval(
        "SELECT coalesce(max(quantity), 0) FROM livestream_buyer_counts WHERE item_id = $1",
        item,
    )
    order_ids = list({row["order_id"] for row in line_rows})
    records = await conn.fetch(
        "SELECT scope, key, order_id FROM idempotency_records WHERE order_id = ANY($1::uuid[])",
        order_ids,
    )
    await conn.close()

    sold = sum(row["quantity"] for row in line_rows)
    per_buyer: dict[str, int] = {}
    for row in line_rows:
        per_buyer[row["buyer_key"]] = per_buyer.get(row["buyer_key"], 0) + row["quantity"]
    in_db = {str(order_id) for order_id in order_ids}
    answered = set(accepted_orders.values())
    keys_per_order: dict[str, int] = {}
    orders_per_key: dict[tuple[str, str], set[str]] = {}
    for record in records:
        order = str(record["order_id"])
        keys_per_order[order] = keys_per_order.get(order, 0) + 1
        orders_per_key.setdefault((record["scope"], record["key"]), set()).add(order)
    recorded_by_key = {key: orders for (_, key), orders in orders_per_key.items()}
    return {
        "initial_stock": units,
        "sold": sold,
        "left": int(left),
        "held_units": int(held),
        "buyer_count_units": int(counted),
        "orders": len(in_db),
        "oversold": max(0, sold - units) + max(0, -int(left)),
        "sold_plus_left_is_initial": sold + int(left) == units,
        "lost_orders": len(answered - in_db),
        "orders_without_accepted_answer": len(in_db - answered),
        "max_units_per_buyer": max(per_buyer.values(), default=0),
        "buyers_above_limit": sum(1 for q in per_buyer.values() if q > PER_BUYER_LIMIT),
        "max_buyer_count": int(counted_max),
        "orders_without_one_key": sum(1 for o in in_db if keys_per_order.get(o, 0) != 1),
        "keys_with_several_orders": sum(1 for o in orders_per_key.values() if len(o) > 1),
        "accepted_keys_not_matching_record": sum(
            1 for key, order in accepted_orders.items() if recorded_by_key.get(key) != {order}
        ),
    }


def reconciliation_failures(checks: dict[str, Any], accepted: int) -> list[str]:
    failures = []
    if checks["oversold"]:
        failures.append(f"oversold by {checks['oversold']}")
    if not checks["sold_plus_left_is_initial"]:
        failures.append("sold + left != initial")
    if checks["held_units"] != checks["sold"] or checks["buyer_count_units"] != checks["sold"]:
        failures.append("holds or buyer counts disagree with the order lines")
    if checks["lost_orders"]:
        failures.append(f"{checks['lost_orders']} accepted answers without an order row")
    if checks["orders_without_accepted_answer"]:
        failures.append(f"{checks['orders_without_accepted_answer']} orders nobody was told of")
    if accepted != checks["orders"]:
        failures.append(f"{accepted} accepted answers but {checks['orders']} orders")
    if checks["buyers_above_limit"] or checks["max_buyer_count"] > PER_BUYER_LIMIT:
        failures.append("a buyer above the per-buyer limit")
    if (
        checks["orders_without_one_key"]
        or checks["keys_with_several_orders"]
        or checks["accepted_keys_not_matching_record"]
    ):
        failures.append("an order without exactly one Idempotency-Key")
    return failures


# ---- The server -------------------------------------------------------------------------


def start_server(
    sqlalchemy_url: str, port: int, var_dir: str, workers: int = SERVER_WORKERS
) -> subprocess.Popen[bytes]:
    """The production server; with one worker uvicorn serves in this very process."""
    env = {
        **os.environ,
        "MARKETPLACE_MODE": "embedded",
        "DATABASE_URL": sqlalchemy_url,
        "REDIS_URL": REDIS_URL,
        "MARKETPLACE_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
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
    )


@dataclass(frozen=True)
class Sale:
    dsn: str
    sqlalchemy_url: str
    seeded: dict[str, Any]
    base: str
    server: subprocess.Popen[bytes]


@contextlib.contextmanager
def sale_server(prefix: str, buyers: int, workers: int = SERVER_WORKERS) -> Iterator[Sale]:
    """A database of its own (migrated, seeded with the accounts and their history) and the
    production server on it; the server stopped and the database dropped afterwards."""
    from marketplace.schema import upgrade_to_head  # noqa: PLC0415 - the load generator needs none

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    dsn = asyncio.run(create_database(name))
    sqlalchemy_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        upgrade_to_head(sqlalchemy_url)
        seeded = asyncio.run(seed(dsn, buyers))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory() as var_dir:
            server = start_server(sqlalchemy_url, port, var_dir, workers)
            try:
                wait_ready(base)
                yield Sale(dsn, sqlalchemy_url, seeded, base, server)
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        asyncio.run(drop_database(name))


# ---- One run, many runs -----------------------------------------------------------------


def one_run(
    run: int, args: argparse.Namespace, urls: tuple[str, str], seeded: dict[str, Any], base: str
) -> dict[str, Any]:
    dsn, sqlalchemy_url = urls
    item_id = asyncio.run(open_sale(sqlalchemy_url, dsn, seeded, run, args.units))
    naive = asyncio.run(naive_ceiling(dsn, args.units))
    print(f"run {run + 1}: naive ceiling {naive['per_s']}/s", flush=True)
    measured = run_load_generator(
        {
            "base": base,
            "connections": args.connections,
            "sold_out_seconds": args.sold_out_seconds,
            "health_seconds": args.health_seconds,
            "item_id": item_id,
            "seed": run,
            "tokens": seeded["tokens"],
        }
    )
    placed = measured["orders"]
    accepted_orders = placed.pop("accepted_orders")
    checks = asyncio.run(reconcile(dsn, item_id, args.units, accepted_orders))
    failures = reconciliation_failures(checks, placed["accepted"])
    unexpected_errors = sum(placed["unexpected"].values())
    figures = {
        "accepted_per_s": placed["accepted_per_s"],
        "naive_ceiling_per_s": naive["per_s"],
        "health_per_s": measured["health"]["per_s"],
        "sold_out_per_s": placed["sold_out_per_s"],
        "p50_accepted_ms": placed["p50_accepted_ms"],
        "p99_accepted_ms": placed["p99_accepted_ms"],
        "initial_stock": args.units,
        "sold": checks["sold"],
        "oversold": checks["oversold"],
        "lost_orders": checks["lost_orders"],
        "unexpected_errors": unexpected_errors,
    }
    result = {
        **figures,
        "accepted_vs_naive": round(figures["accepted_per_s"] / naive["per_s"], 3),
        "sold_out_vs_health": round(figures["sold_out_per_s"] / figures["health_per_s"], 3),
        "health": measured["health"],
        "naive_ceiling": naive,
        "orders": placed,
        "reconciliation": checks,
        "failures": failures,
        "load_average_at_end": os.getloadavg(),
    }
    print(json.dumps({"run": run + 1, **figures, "failures": failures}), flush=True)
    return result


MEDIAN_FIELDS = (
    "accepted_per_s",
    "naive_ceiling_per_s",
    "health_per_s",
    "sold_out_per_s",
    "p50_accepted_ms",
    "p99_accepted_ms",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1,000 units, 1 run (CI)")
    parser.add_argument("--runs", type=int)
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="where the JSON goes (CI keeps the record)"
    )
    parser.add_argument("--units", type=int)
    parser.add_argument("--buyers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--sold-out-seconds", type=float, default=5)
    parser.add_argument("--health-seconds", type=float, default=5)
    parser.add_argument("--load-generator", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_generator:
        load_generator_main(args.load_generator)
        return
    args.units = args.units or (1_000 if args.quick else 10_000)
    args.runs = args.runs or (1 if args.quick else 3)

    runs: list[dict[str, Any]] = []
    with sale_server("mp_bench_flash", args.buyers) as sale:
        for run in range(args.runs):
            runs.append(one_run(run, args, (sale.dsn, sale.sqlalchemy_url), sale.seeded, sale.base))

    top: dict[str, Any] = {
        figure: round(statistics.median(run[figure] for run in runs), 2) for figure in MEDIAN_FIELDS
    }
    top |= {
        "initial_stock": args.units,
        "sold": min(run["sold"] for run in runs),
        "oversold": sum(run["oversold"] for run in runs),
        "lost_orders": sum(run["lost_orders"] for run in runs),
        "unexpected_errors": sum(run["unexpected_errors"] for run in runs),
    }
    result = {
        **top,
        "median_of_runs": len(runs),
        "goals": {
            "accepted_vs_naive": round(top["accepted_per_s"] / top["naive_ceiling_per_s"], 3),
            "accepted_vs_naive_goal": 1.5,
            "p99_accepted_ms_goal": 100,
            "sold_out_vs_health": round(top["sold_out_per_s"] / top["health_per_s"], 3),
            "sold_out_vs_health_goal": 0.5,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "server": f"uvicorn --factory marketplace.app:create_app --workers {SERVER_WORKERS}",
        "load_generator": f"aiohttp, separate process, closed loop, {args.connections} connections",
        "buyers": args.buyers,
        "per_buyer_limit": PER_BUYER_LIMIT,
        "quick": args.quick,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    failures = [f"run {n + 1}: {f}" for n, run in enumerate(runs) for f in run["failures"]]
    if top["unexpected_errors"]:
        failures.append(f"{top['unexpected_errors']} unexpected errors")
    if failures:
        raise SystemExit("flash sale failed: " + "; ".join(failures))


if __name__ == "__main__":
    main()
