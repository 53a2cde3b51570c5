"""Soak: mixed traffic for minutes on the production server while its PostgreSQL, Redis and
Celery worker are restarted under it, then an exact reconciliation of orders, stock and money.

    uv run python bench/soak.py               # 10 minutes, ~14 minutes in all
    uv run python bench/soak.py --quick       # 1 minute, smaller data, ~4 minutes in all
    uv run python bench/soak.py --minutes 3 --faults redis --fault-every 20

Nothing here touches the machine's PostgreSQL or Redis: the soak starts its own (the embedded
ones of `marketplace demo`, in a temporary directory), so restarting them hurts nobody else.

1. Set-up: embedded PostgreSQL and Redis, a local Stripe stand-in for the real SDK, then
   `marketplace seed` (the demo households, reviews, cooperative, products and officials,
   through the services). Then over HTTP only, as each role would: buyers register and log
   in, the admin raises the stock and adds the Huế province official, the host opens a live
   session (90-second holds) and pins five items, one of them short so it sells out.
2. The production server (`uvicorn --factory marketplace.app:create_app --workers 2`), a
   Celery worker (`celery -A workers.app worker`, prefork, 2 processes) and beat, each a
   subprocess on the soak's own PostgreSQL and Redis.
3. A load generator in its own process (aiohttp, closed loop, `--users` virtual users) mixes:
   browsing (anonymous catalog, livestream items, public impact page), catalog and livestream
   orders (VietQR, card, cash on delivery; some cancelled, some abandoned to expire), comment
   orders relayed by the platform connector ("chốt SK1 x2 09...", some taken back), VietQR
   payments through the signed bank webhook (some partial, some delivered twice), card
   payments through the real Stripe SDK and signed Stripe webhooks, COD shipping, delivery
   and the carrier's remittance file, admin refunds (full and partial, some card refunds
   through Stripe), and officials' and sellers' report and ledger reads. Like a real client
   it retries after a 5xx, a lost connection or `request_in_progress`, with the same
   Idempotency-Key (orders, refunds), the same bank reference or Stripe event id, and keeps
   every order id it was given.
4. Faults on a schedule (every `--fault-every` seconds, in turn): PostgreSQL stopped in fast
   mode (`pg_ctl stop`, aborting open transactions) and started again, Redis stopped (SIGTERM,
   or SIGKILL every other time) and started again on the same port with its append-only file,
   the Celery worker SIGKILLed (with its pool) and started again. A worker or beat that
   exits by itself is restarted, as compose's `restart: unless-stopped` would, and listed.
5. Drain: the load stops, the worker and beat deliver the outbox and release expired holds
   until nothing is left (queue empty, outbox delivered, no expired hold), then they stop.
   Messages a killed worker had taken wait in the broker's `unacked` set for its visibility
   timeout (an hour); their number is reported, their work was done by the sweeps.
6. Reconciliation in one REPEATABLE READ snapshot of the soak's database, exact:
   every accepted order id is a row, once, and every order row was answered to some client;
   one Idempotency-Key per order; per livestream item stock cap = available + held + sold,
   per variant the initial stock = available + held + sold + the caps moved to its items;
   buyer counts agree with the holds; per order the paid and refunded đồng the clients saw
   are the database's; in total the settled payments the clients saw less the refunds they
   were given = settled lines less refunded lines = the sellers' ledger (gross and net) =
   the impact attribution ledger, per seller too; every outbox event delivered once; the
   officials' commune and province summaries (over HTTP) = the attribution ledger.

Errors by kind: a 5xx answered as a clean problem+json 503 while PostgreSQL or Redis is down
(and 20 s after it is back) is expected; any other 5xx, any lost connection to the API, and
any 4xx a kind does not expect is unexpected. Figures in bench/results/soak.json; exits 1 if
any reconciliation difference is not 0 or any error was unexpected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness import percentile, wait_ready  # noqa: E402 - after the path set-up above

from marketplace.embedded import (  # noqa: E402 - after the path set-up above
    EmbeddedPostgres,
    EmbeddedRedis,
    die_with_parent,
    embedded_environment,
    free_port,
)
from tests.payments.stripe_server import StripeServer  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "soak.json"
VIETNAM = timezone(timedelta(hours=7))
SERVER_WORKERS = 2
WORKER_CONCURRENCY = 2
QUEUE = "marketplace"
COLLECTION_BIN = "970436"
COLLECTION_ACCOUNT = "1017595600"
FEE_BPS = 500
HUONG_TRA = "19996"
HUE = "46"
LIVE_HOLD_SECONDS = 90
FAULT_GRACE_SECONDS = 20.0
"""After PostgreSQL or Redis is back, a 503 is still clean for this long (pools reconnect)."""
RETRY_DEADLINE_SECONDS = 150.0
"""A client keeps retrying one request this long: longer than a fault and an idempotency
lease (60 s) together, so every request ends with a definite answer."""
RULES = (
    "Phiên live thử tải: chốt đơn qua ứng dụng, mỗi người tối đa 20 phần mỗi mã. "
    "Đơn giữ hàng 90 giây; quá thời gian chưa thanh toán, hàng trả lại cho người khác."
)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


# ---- The soak's own services ------------------------------------------------------------


@dataclass
class Fault:
    kind: str
    started_at: float
    back_at: float = 0.0
    detail: str = ""

    def window(self) -> tuple[float, float]:
        return self.started_at, self.back_at + FAULT_GRACE_SECONDS


@dataclass
class Processes:
    """The server, worker and beat, each in its own process group so a fault or the end
    stops exactly what the soak started."""

    env: dict[str, str]
    logs: Path
    port: int
    server: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    beat: subprocess.Popen[bytes] | None = None
    worker_starts: int = 0
    unplanned_exits: list[dict[str, Any]] = field(default_factory=list)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(
            args,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - prctl only, before threads
        )

    def start_server(self) -> None:
        self.server = self._spawn(
            "server",
            [sys.executable, "-m", "uvicorn", "--factory", "marketplace.app:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(SERVER_WORKERS),
             "--no-access-log", "--log-level", "warning"],
        )  # fmt: skip

    def start_worker(self) -> None:
        self.worker_starts += 1
        self.worker = self._spawn(
            f"worker-{self.worker_starts}",
            [sys.executable, "-m", "celery", "-A", "workers.app", "worker", "--pool", "prefork",
             "--concurrency", str(WORKER_CONCURRENCY), "-Q", QUEUE, "-l", "INFO",
             "--hostname", f"soak{self.worker_starts}@%h"],
        )  # fmt: skip

    def start_beat(self) -> None:
        schedule = Path(self.env["MARKETPLACE_VAR_DIR"]) / "celerybeat-schedule"
        self.beat = self._spawn(
            "beat",
            [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-l", "INFO",
             "--schedule", str(schedule)],
        )  # fmt: skip

    def supervise(self) -> None:
        """Restart a worker or beat that exited without being told to, as a supervisor
        (compose's `restart: unless-stopped`) would, and remember it: a finding."""
        for name in ("worker", "beat"):
            process: subprocess.Popen[bytes] | None = getattr(self, name)
            if process is not None and process.poll() is not None:
                self.unplanned_exits.append(
                    {"process": name, "at": time.time(), "returncode": process.returncode}
                )
                print(f"  {name} exited by itself ({process.returncode}); restarted", flush=True)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                self.start_worker() if name == "worker" else self.start_beat()
        if self.server is not None and self.server.poll() is not None:
            raise RuntimeError(f"the API server exited ({self.server.returncode})")

    def kill_worker(self) -> None:
        if self.worker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait()
            self.worker = None

    @staticmethod
    def _stop(process: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_workers(self) -> None:
        self._stop(self.beat)
        self._stop(self.worker)
        self.beat = self.worker = None

    def stop_all(self) -> None:
        self.stop_workers()
        self._stop(self.server)
        self.server = None


class Services:
    """The soak's PostgreSQL, Redis and Stripe stand-in, and the faults done to them."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.postgres = EmbeddedPostgres(work / "pg-root")
        self.redis = EmbeddedRedis(work / "redis-root")
        self.stripe = StripeServer()
        self.faults: list[Fault] = []
        self.secrets = {"bank": secrets.token_hex(24), "stripe": "whsec_" + secrets.token_hex(24)}
        self._redis_stops = 0

    def start(self) -> None:
        self.postgres.start()
        self.redis.start()
        self.stripe.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stripe.stop()
        self.redis.stop()
        self.postgres.stop()

    @property
    def database_url(self) -> str:
        return self.postgres.url()

    @property
    def dsn(self) -> str:
        return self.postgres.url().replace("postgresql+asyncpg://", "postgresql://", 1)

    def restart_postgres(self, down: float) -> Fault:
        """`pg_ctl stop` (fast mode, PostgreSQL's default: open transactions are rolled back
        and every connection is cut), `down` seconds without a database, then start."""
        fault = Fault("postgres_restart", time.time())
        self.postgres.stop()
        time.sleep(down)
        self.postgres.start()
        fault.back_at = time.time()
        self.faults.append(fault)
        return fault

    def restart_redis(self, down: float) -> Fault:
        """SIGTERM (Redis writes its append-only file) or, every other time, SIGKILL (what
        was not yet fsynced is lost: at most a second of broker messages and caches)."""
        self._redis_stops += 1
        kill = self._redis_stops % 2 == 0
        fault = Fault("redis_kill" if kill else "redis_restart", time.time())
        if kill and self.redis.pid is not None:
            os.kill(self.redis.pid, signal.SIGKILL)
        self.redis.stop()
        time.sleep(down)
        self.redis.start()
        fault.back_at = time.time()
        self.faults.append(fault)
        return fault

    def kill_worker(self, processes: Processes, down: float) -> Fault:
        """SIGKILL the worker and its pool mid-task: acks_late gives the messages back."""
        fault = Fault("worker_kill", time.time())
        processes.kill_worker()
        time.sleep(down)
        processes.start_worker()
        fault.back_at = time.time()
        self.faults.append(fault)
        return fault


def server_environment(work: Path, services: Services) -> dict[str, str]:
    env = embedded_environment(work / "var", services.database_url, services.redis.url(0))
    env.update(
        {
            "LOG_LEVEL": "WARNING",
            "LOG_JSON": "true",
            "STRIPE_API_KEY": "sk_test_soak_local_stand_in",
            "STRIPE_WEBHOOK_SECRET": services.secrets["stripe"],
            "STRIPE_API_BASE": services.stripe.base_url,
            "BANK_WEBHOOK_SECRET": services.secrets["bank"],
            "COLLECTION_BANK_BIN": COLLECTION_BIN,
            "COLLECTION_ACCOUNT_NUMBER": COLLECTION_ACCOUNT,
            "PLATFORM_FEE_BPS": str(FEE_BPS),
            # Buyers register and log in over HTTP before the soak: cheap hashes and no
            # per-address login limit for one client address registering hundreds.
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_COST": "8192",
            "LOGIN_ATTEMPTS_PER_IP": "1000000",
        }
    )
    return env


# ---- Set-up: demo seed, then HTTP as each role ------------------------------------------


def seed_demo(env: dict[str, str], logs: Path) -> dict[str, str]:
    """`marketplace seed` on the soak's database; returns the demo passwords it made."""
    command = Path(sys.executable).parent / "marketplace"
    with (logs / "seed.log").open("wb") as log:
        subprocess.run(
            [str(command), "seed"], env=env, cwd=ROOT, check=True, stdout=log, stderr=log
        )
    passwords: dict[str, str] = json.loads(
        (Path(env["MARKETPLACE_VAR_DIR"]) / "demo-credentials.json").read_text()
    )
    return passwords


def _ok(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"set-up: {what} answered {response.status_code}: {response.text}")
    return response.json() if response.content else None


def login(client: httpx.Client, user: str, password: str) -> str:
    body = _ok(client.post("/api/auth/login", json={"login": user, "password": password}), user)
    token: str = body["token"]
    return token


async def register_buyers(base: str, count: int, run: str) -> list[dict[str, str]]:
    """Buyer accounts made as buyers make them: register, then log in."""
    gate = asyncio.Semaphore(8)

    async def one(client: httpx.AsyncClient, n: int) -> dict[str, str]:
        login_name = f"nguoi.mua.{run}.{n}@example.vn"
        password = "soak-" + secrets.token_urlsafe(12)
        async with gate:
            registered = await client.post(
                "/api/auth/register",
                json={"login": login_name, "password": password, "display_name": f"Người mua {n}"},
            )
            _ok(registered, f"register buyer {n}")
            answer = await client.post(
                "/api/auth/login", json={"login": login_name, "password": password}
            )
            body = _ok(answer, f"log in buyer {n}")
        return {"token": body["token"], "id": body["user"]["id"], "phone": f"091{n:07d}"}

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        return list(await asyncio.gather(*(one(client, n) for n in range(count))))


async def _catalog_rows(dsn: str) -> list[asyncpg.Record]:
    """Read-only look-up of the ids the demo seed made (households are not public)."""
    conn = await asyncpg.connect(dsn)
    try:
        return list(
            await conn.fetch(
                """SELECT p.id AS product_id, p.name, p.household_id, p.cooperative_id,
                          v.id AS variant_id, v.label, v.price_amount, v.available
                   FROM products p JOIN variants v ON v.product_id = p.id
                   WHERE p.status = 'listed' AND v.is_active
                   ORDER BY p.name, v.price_amount"""
            )
        )
    finally:
        await conn.close()


def set_up(
    base: str, dsn: str, passwords: dict[str, str], args: argparse.Namespace, run: str
) -> dict[str, Any]:
    """Accounts, stock and the live session, through the API as each role would."""
    with httpx.Client(base_url=base, timeout=60) as client:
        tokens = {
            role: login(client, account, passwords[account])
            for role, account in {
                "admin": "admin@demo.vn",
                "host": "host@demo.vn",
                "farmer": "nongdan@demo.vn",
                "commune_official": "canbo.xa@demo.vn",
            }.items()
        }
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        host = {"Authorization": f"Bearer {tokens['host']}"}
        official_password = "soak-" + secrets.token_urlsafe(12)
        _ok(
            client.post(
                "/api/admin/users",
                headers=admin,
                json={
                    "login": f"canbo.hue.{run}@example.vn",
                    "password": official_password,
                    "display_name": "Lê Văn Tỉnh",
                    "role": "official",
                    "jurisdiction_level": "province",
                    "jurisdiction_code": HUE,
                },
            ),
            "create the Huế province official",
        )
        tokens["province_official"] = login(
            client, f"canbo.hue.{run}@example.vn", official_password
        )

        rows = asyncio.run(_catalog_rows(dsn))
        variants: list[dict[str, Any]] = []
        for row in rows:
            product, variant = str(row["product_id"]), str(row["variant_id"])
            # One scarce catalog variant sells out early: refusals and the sold-out cache
            # meet the Redis restarts; every other variant has plenty.
            scarce = row["name"] == "Cốm An Thuận" and row["label"] == "hộp 1 kg"
            stock = args.scarce_stock if scarce else args.stock
            _ok(
                client.patch(
                    f"/api/products/{product}/variants/{variant}",
                    headers=admin,
                    json={"available": stock},
                ),
                f"stock of {row['name']} {row['label']}",
            )
            variants.append(
                {
                    "product_id": product,
                    "variant_id": variant,
                    "name": f"{row['name']} {row['label']}",
                    "price": int(row["price_amount"]),
                    "household_id": str(row["household_id"]) if row["household_id"] else None,
                    "cooperative_id": (
                        str(row["cooperative_id"]) if row["cooperative_id"] else None
                    ),
                }
            )

        households = sorted({v["household_id"] for v in variants if v["household_id"]})
        now = datetime.now(UTC)
        session = _ok(
            client.post(
                "/api/host/livestreams",
                headers=host,
                json={
                    "title": f"Phiên live thử tải {run}",
                    "platform": "facebook",
                    "scheduled_start_at": (now + timedelta(minutes=2)).isoformat(),
                    "scheduled_end_at": (now + timedelta(hours=4)).isoformat(),
                    "rules_text": RULES,
                    "hold_seconds": LIVE_HOLD_SECONDS,
                    "household_ids": households,
                },
            ),
            "create the live session",
        )
        session_id = session["id"]
        _ok(client.post(f"/api/host/livestreams/{session_id}/schedule", headers=host), "schedule")
        items: list[dict[str, Any]] = []
        # The crate (second variant) of each household product, so they never share a
        # variant with the demo's scheduled session; the last one is short and sells out.
        crates = [v for v in variants if v["household_id"] and v["price"] >= 500_000]
        for n, crate in enumerate(crates, start=1):
            cap = args.live_short_cap if n == len(crates) else args.live_cap
            item = _ok(
                client.post(
                    f"/api/host/livestreams/{session_id}/items",
                    headers=host,
                    json={
                        "variant_id": crate["variant_id"],
                        "code": f"SK{n}",
                        "live_price_amount": crate["price"] - 20_000 - 1_000 * n,
                        "stock_cap": cap,
                        "per_buyer_limit": 20,
                    },
                ),
                f"pin SK{n}",
            )
            items.append(
                {"item_id": item["id"], "code": item["code"], "price": item["live_price_amount"]}
            )
        _ok(client.post(f"/api/host/livestreams/{session_id}/go-live", headers=host), "go live")
        connector = _ok(
            client.post(f"/api/host/livestreams/{session_id}/connector-token", headers=host),
            "connector token",
        )

    buyers = asyncio.run(register_buyers(base, args.buyers, run))
    return {
        "tokens": tokens,
        "buyers": buyers,
        "variants": variants,
        "households": households,
        "session_id": session_id,
        "connector_token": connector["token"],
        "items": items,
    }


# ---- The load generator (its own process) -----------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any
    errored_before: bool
    """An earlier attempt of this request failed without a definite answer: the first
    attempt may have done the work (a webhook then answers `duplicate`)."""


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Every 5xx and lost connection, with its time, for the classification by fault."""
    unexpected_4xx: Counter[str] = field(default_factory=Counter)
    gave_up: Counter[str] = field(default_factory=Counter)
    retries: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def record(self, kind: str, status: int, ms: float) -> None:
        self.requests[kind] += 1
        self.statuses.setdefault(kind, Counter())[str(status)] += 1
        self.latencies.setdefault(kind, []).append(ms)


@dataclass
class TrackedOrder:
    """What a client knows of one of its orders, from the answers it was given."""

    id: str
    key: str
    kind: str
    method: str
    total: int
    buyer: int
    fulfilments: list[str]
    paid: int = 0
    refunded: int = 0
    settled: bool = False
    cancelled: bool = False
    outcome: str = "open"


RETRY_CODES = {"request_in_progress"}


class LoadGenerator:
    def __init__(self, plan: dict[str, Any], http: Any) -> None:
        self.plan = plan
        self.http = http
        self.stats = Stats()
        self.end_at = plan["end_at"]
        self.buyers: list[dict[str, str]] = plan["buyers"]
        self.tokens: dict[str, str] = plan["tokens"]
        self.variants: list[dict[str, Any]] = plan["variants"]
        self.items: list[dict[str, Any]] = plan["items"]
        self.orders: dict[str, TrackedOrder] = {}
        self.accepted: dict[str, str] = {}
        """Idempotency-Key -> the order id the server gave for it."""
        self.refundable: list[str] = []
        self.cod_to_ship: list[str] = []
        self.cod_delivered: list[str] = []
        self.refunds: dict[str, dict[str, Any]] = {}
        self.money: Counter[str] = Counter()
        self.turn = 0

    # -- one request, retried as a real client would ------------------------------------

    async def send(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        expected: frozenset[tuple[int, str]] = frozenset(),
        sign: Any = None,
    ) -> Answer | None:
        """Send until a definite answer: 2xx or a 4xx. A 5xx, a lost connection or a
        `request_in_progress` is retried with the same request (same key, same reference)
        for up to RETRY_DEADLINE_SECONDS; `sign` re-signs a webhook for each attempt."""
        import aiohttp  # noqa: PLC0415 - only the load-generator process needs it

        payload = (
            raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        )
        started = time.time()
        errored = False
        delay = 0.3
        while True:
            all_headers = {"Content-Type": "application/json", **(headers or {})}
            if token is not None:
                all_headers["Authorization"] = f"Bearer {token}"
            if sign is not None and payload is not None:
                all_headers.update(sign(payload))
            sent = time.perf_counter()
            status, code, parsed = 0, "", None
            try:
                async with self.http.request(
                    method, path, data=payload, headers=all_headers
                ) as response:
                    content = await response.read()
                    status = response.status
                    if content and response.content_type.endswith("json"):
                        parsed = json.loads(content)
                        if isinstance(parsed, dict) and status >= 400:
                            code = str(parsed.get("code", ""))
            except (aiohttp.ClientError, TimeoutError) as exc:
                code = type(exc).__name__
            ms = (time.perf_counter() - sent) * 1000
            self.stats.record(kind, status, ms)
            retry = status == 0 or status >= 500 or (status == 409 and code in RETRY_CODES)
            if status == 0 or status >= 500:
                self.stats.errors.append(
                    {"at": time.time(), "kind": kind, "status": status, "code": code}
                )
            if not retry:
                if 400 <= status < 500 and (status, code) not in expected:
                    self.stats.unexpected_4xx[f"{kind} {status} {code}"] += 1
                return Answer(status, parsed, errored)
            errored = errored or status != 409
            if time.time() - started > RETRY_DEADLINE_SECONDS:
                self.stats.gave_up[kind] += 1
                return None
            self.stats.retries[kind] += 1
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 1.6)

    # -- browsing and reports ----------------------------------------------------------

    async def browse(self, rng: random.Random) -> None:
        filters = rng.choice(
            ["", "?q=cam", "?category=fruit", "?sold_by_poor=true", f"?province={HUE}", "?q=buoi"]
        )
        page = await self.send("browse", "GET", f"/api/products{filters}")
        variant = rng.choice(self.variants)
        await self.send("browse", "GET", f"/api/products/{variant['product_id']}")
        await self.send("browse", "GET", f"/api/livestreams/{self.plan['session_id']}/items")
        if rng.random() < 0.3:
            await self.send("browse", "GET", f"/api/public/impact/provinces/{HUE}")
        if page is not None and page.status == 200 and page.body and page.body.get("next_cursor"):
            await self.send("browse", "GET", f"/api/products?cursor={page.body['next_cursor']}")

    async def reports(self, rng: random.Random) -> None:
        choice = rng.randrange(5)
        if choice == 0:
            await self.send(
                "report",
                "GET",
                f"/api/impact/communes/{HUONG_TRA}/summary",
                token=self.tokens["commune_official"],
            )
        elif choice == 1:
            await self.send(
                "report",
                "GET",
                f"/api/impact/provinces/{HUE}/summary",
                token=self.tokens["province_official"],
            )
        elif choice == 2:
            await self.send(
                "report",
                "GET",
                f"/api/impact/households?commune_code={HUONG_TRA}&limit=50",
                token=self.tokens["commune_official"],
            )
        elif choice == 3:
            household = rng.choice(self.plan["households"])
            await self.send(
                "ledger", "GET", f"/api/ledger?household_id={household}", token=self.tokens["admin"]
            )
        else:
            await self.send("ledger", "GET", "/api/ledger", token=self.tokens["farmer"])

    # -- orders -----------------------------------------------------------------------

    async def place(self, rng: random.Random, kind: str) -> TrackedOrder | None:
        buyer_n = rng.randrange(len(self.buyers))
        buyer = self.buyers[buyer_n]
        lines: list[dict[str, Any]] = []
        if kind == "order_live":
            item = rng.choice(self.items)
            lines.append({"livestream_item_id": item["item_id"], "quantity": rng.randint(1, 2)})
            if rng.random() < 0.2:
                lines.append({"variant_id": rng.choice(self.variants)["variant_id"], "quantity": 1})
        else:
            for variant in rng.sample(self.variants, rng.choice([1, 1, 2])):
                lines.append({"variant_id": variant["variant_id"], "quantity": rng.randint(1, 3)})
        method = rng.choices(["vietqr", "card", "cod"], weights=[45, 30, 25])[0]
        body = {
            "lines": lines,
            "payment_method": method,
            "shipping": {
                "name": f"Người mua {buyer_n}",
                "phone": buyer["phone"],
                "address": f"{buyer_n} Lê Lợi, phường Thuận Hóa, Huế",
            },
        }
        self.turn += 1
        key = f"soak-{self.plan['run']}-{self.turn}-{uuid.uuid4().hex[:12]}"
        expected = frozenset({(409, "sold_out"), (409, "limit_reached")})
        answer = await self.send(
            kind,
            "POST",
            "/api/orders",
            token=buyer["token"],
            body=body,
            headers={"Idempotency-Key": key},
            expected=expected,
        )
        if answer is None or answer.status != 201:
            if answer is not None and answer.status == 409:
                self.stats.notes[f"{kind} {answer.body.get('code')}"] += 1
            return None
        if rng.random() < 0.03:
            # A client that lost the answer asks again: the same order, not a second one.
            again = await self.send(
                kind,
                "POST",
                "/api/orders",
                token=buyer["token"],
                body=body,
                headers={"Idempotency-Key": key},
            )
            same = (
                again is not None and again.status == 201 and again.body["id"] == answer.body["id"]
            )
            self.stats.notes["order_replay_same" if same else "order_replay_differs"] += 1
        order = TrackedOrder(
            id=answer.body["id"],
            key=key,
            kind=kind,
            method=method,
            total=int(answer.body["total_amount"]),
            buyer=buyer_n,
            fulfilments=[f["id"] for f in answer.body["fulfilments"]],
        )
        self.accepted[key] = order.id
        self.orders[order.id] = order
        return order

    async def order_flow(self, rng: random.Random, kind: str) -> None:
        order = await self.place(rng, kind)
        if order is None:
            return
        await asyncio.sleep(rng.uniform(0, 1.0))
        roll = rng.random()
        cancel_share, abandon_share = (0.15, 0.2) if kind == "order_live" else (0.12, 0.06)
        if roll < cancel_share:
            await self.cancel(order)
        elif roll < cancel_share + abandon_share:
            order.outcome = "abandoned"
        elif order.method == "vietqr":
            await self.pay_bank(order, rng)
        elif order.method == "card":
            await self.pay_card(order, rng)
        else:
            order.outcome = "cod_confirmed"
            self.cod_to_ship.append(order.id)

    async def order_state(self, order: TrackedOrder) -> dict[str, Any] | None:
        """The order as its buyer sees it: how a client settles an ambiguous answer."""
        token = self.buyers[order.buyer]["token"] if order.buyer >= 0 else self.tokens["admin"]
        answer = await self.send("order_read", "GET", f"/api/orders/{order.id}", token=token)
        if answer is None or answer.status != 200:
            return None
        body: dict[str, Any] = answer.body
        return body

    async def cancel(self, order: TrackedOrder) -> None:
        token = self.buyers[order.buyer]["token"]
        answer = await self.send(
            "cancel",
            "POST",
            f"/api/orders/{order.id}/cancel",
            token=token,
            expected=frozenset({(409, "illegal_transition")}),
        )
        if answer is None:
            return
        if answer.status == 200:
            order.cancelled, order.outcome = True, "cancelled"
            return
        # Refused: the hold had run out (a livestream order), or our first attempt did it.
        state = await self.order_state(order)
        if state is not None and state["status"] == "cancelled":
            order.cancelled = True
            order.outcome = "cancelled" if answer.errored_before else "expired"

    async def pay_bank(self, order: TrackedOrder, rng: random.Random) -> None:
        token = self.buyers[order.buyer]["token"]
        qr = await self.send(
            "vietqr",
            "GET",
            f"/api/orders/{order.id}/vietqr",
            token=token,
            expected=frozenset({(409, "not_awaiting_transfer")}),
        )
        if qr is None or qr.status != 200:
            order.outcome = "expired_before_payment"
            return
        due, code = int(qr.body["amount"]), qr.body["description"]
        parts = [due] if rng.random() > 0.06 or due < 3 else [due // 3, due - due // 3]
        for part in parts:
            outcome = await self.bank_transfer(order, part, code, replay=rng.random() < 0.04)
            if outcome in {"unmatched", None}:
                return

    async def bank_transfer(
        self, order: TrackedOrder, amount: int, code: str, *, replay: bool
    ) -> str | None:
        secret = self.plan["bank_secret"]
        body = json.dumps(
            {
                "transactions": [
                    {
                        "reference": f"FT{uuid.uuid4().hex[:20].upper()}",
                        "amount": amount,
                        "description": f"{code} thanh toan don hang",
                        "credited_at": _now_iso(),
                        "account_number": COLLECTION_ACCOUNT,
                    }
                ]
            }
        ).encode()

        def sign(payload: bytes) -> dict[str, str]:
            stamp = str(int(time.time()))
            mac = hmac.new(secret.encode(), stamp.encode() + b"." + payload, hashlib.sha256)
            return {"X-Bank-Timestamp": stamp, "X-Bank-Signature": mac.hexdigest()}

        answer = await self.send(
            "bank_webhook", "POST", "/api/payments/bank/webhook", raw=body, sign=sign
        )
        if answer is None or answer.status != 200:
            return None
        outcome = str(answer.body["results"][0]["outcome"])
        if outcome == "duplicate" and answer.errored_before:
            outcome = await self.resolve_payment(order, amount)
        if replay:
            again = await self.send(
                "bank_webhook", "POST", "/api/payments/bank/webhook", raw=body, sign=sign
            )
            duplicate = again is not None and again.body["results"][0]["outcome"] == "duplicate"
            self.stats.notes["bank_replay_duplicate" if duplicate else "bank_replay_applied"] += 1
        self.apply_outcome(order, amount, outcome, "bank")
        return outcome

    async def resolve_payment(self, order: TrackedOrder, amount: int) -> str:
        """A payment answered `duplicate` after a failed attempt: the failed attempt did
        it; what it did is read from the order."""
        state = await self.order_state(order)
        self.stats.notes["payment_resolved_by_reading_the_order"] += 1
        if state is None:
            return "unknown"
        if state["status"] in {"paid", "fulfilling", "shipped", "delivered", "completed"}:
            return "exact" if order.paid + amount == order.total else "over"
        if state["status"] == "partially_paid" and state["paid_amount"] == order.paid + amount:
            return "partial"
        return "unmatched"

    def apply_outcome(self, order: TrackedOrder, amount: int, outcome: str, via: str) -> None:
        if outcome in {"exact", "settled"}:
            order.paid += amount
            order.settled, order.outcome = True, "settled"
            self.money[f"settled_{via}"] += order.total
            self.refundable.append(order.id)
        elif outcome == "partial":
            order.paid += amount
            self.money[f"partial_{via}"] += amount
        else:
            order.outcome = f"payment_{outcome}"
            self.money[f"not_applied_{via}"] += amount

    async def pay_card(self, order: TrackedOrder, rng: random.Random) -> None:
        token = self.buyers[order.buyer]["token"]
        intent = await self.send(
            "card_payment",
            "POST",
            f"/api/orders/{order.id}/card-payment",
            token=token,
            expected=frozenset({(409, "not_a_card_order")}),
        )
        if intent is None or intent.status != 200:
            order.outcome = "expired_before_payment"
            return
        amount = int(intent.body["amount"])
        secret = self.plan["stripe_secret"]
        event = json.dumps(
            {
                "id": "evt_" + secrets.token_hex(12),
                "object": "event",
                "api_version": "2025-01-27.acacia",
                "created": int(time.time()),
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": "payment_intent.succeeded",
                "data": {
                    "object": {
                        "id": intent.body["payment_intent_id"],
                        "object": "payment_intent",
                        "amount": amount,
                        "amount_received": amount,
                        "currency": "vnd",
                        "status": "succeeded",
                    }
                },
            }
        ).encode()

        def sign(payload: bytes) -> dict[str, str]:
            stamp = int(time.time())
            mac = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
            return {"Stripe-Signature": f"t={stamp},v1={mac.hexdigest()}"}

        await asyncio.sleep(rng.uniform(0, 0.5))
        answer = await self.send(
            "stripe_webhook", "POST", "/api/payments/stripe/webhook", raw=event, sign=sign
        )
        if answer is None or answer.status != 200:
            return
        outcome = str(answer.body["outcome"])
        if outcome == "duplicate" and answer.errored_before:
            outcome = await self.resolve_payment(order, amount)
        if rng.random() < 0.04:
            again = await self.send(
                "stripe_webhook", "POST", "/api/payments/stripe/webhook", raw=event, sign=sign
            )
            duplicate = again is not None and again.body["outcome"] == "duplicate"
            self.stats.notes[
                "stripe_replay_duplicate" if duplicate else "stripe_replay_applied"
            ] += 1
        self.apply_outcome(order, amount, outcome, "card")

    async def comment_flow(self, rng: random.Random) -> None:
        """A platform connector relays "chốt SKn xq 09..." from a viewer: a held order
        nobody claims here (the claim code goes out by SMS), so it expires, or the viewer
        takes it back with "bỏ SKn"."""
        item = rng.choice(self.items)
        self.turn += 1
        author = f"fb-{self.plan['run']}-{self.turn}"
        text = f"chốt {item['code']} x{rng.randint(1, 2)} 098{self.turn % 10**7:07d}"
        entries = await self.comment(author, text)
        held = [e for e in entries if e.get("status") == "held" and e.get("order_id")]
        for entry in held:
            order = TrackedOrder(
                id=entry["order_id"],
                key=f"comment:{entry['comment_id']}",
                kind="comment",
                method="",
                total=0,
                buyer=-1,
                fulfilments=[],
            )
            self.accepted[order.key] = order.id
            self.orders[order.id] = order
        if held and rng.random() < 0.3:
            await asyncio.sleep(rng.uniform(0, 2))
            released = await self.comment(author, f"bỏ {item['code']}")
            if any(e.get("status") == "released" for e in released):
                for entry in held:
                    self.orders[entry["order_id"]].cancelled = True
                    self.orders[entry["order_id"]].outcome = "cancelled_by_comment"
        elif held:
            self.orders[held[0]["order_id"]].outcome = "left_to_expire"

    async def comment(self, author: str, text: str) -> list[dict[str, Any]]:
        self.turn += 1
        answer = await self.send(
            "comment",
            "POST",
            f"/api/livestreams/{self.plan['session_id']}/comments",
            body={
                "platform": "facebook",
                "external_id": f"c-{self.plan['run']}-{self.turn}",
                "author_platform_id": author,
                "author_display_name": f"Khách {self.turn}",
                "text": text,
                "commented_at": _now_iso(),
            },
            headers={"X-Connector-Token": self.plan["connector_token"]},
        )
        if answer is None or answer.status not in {200, 201}:
            return []
        entries: list[dict[str, Any]] = answer.body.get("entries", [])
        for entry in entries:
            self.stats.notes[f"comment_{entry.get('status')}"] += 1
        return entries

    # -- cash on delivery, refunds -------------------------------------------------------

    async def fulfil_cod(self, rng: random.Random) -> None:
        """An admin ships and delivers some confirmed COD orders (a buyer cancels one now
        and then first), and imports the carrier's remittance for delivered ones."""
        admin = self.tokens["admin"]
        batch = [self.cod_to_ship.pop() for _ in range(min(len(self.cod_to_ship), 3))]
        for order_id in batch:
            order = self.orders[order_id]
            if rng.random() < 0.1:
                await self.cancel(order)
                if order.cancelled:
                    continue
            shipped = True
            for fulfilment in order.fulfilments:
                for step, body in (
                    ("ship", {"carrier": "GHTK", "tracking_number": f"S{uuid.uuid4().hex[:12]}"}),
                    ("deliver", None),
                ):
                    answer = await self.send(
                        "fulfil",
                        "POST",
                        f"/api/fulfilments/{fulfilment}/{step}",
                        token=admin,
                        body=body,
                        expected=frozenset({(409, "illegal_transition")}),
                    )
                    shipped = shipped and answer is not None
            if shipped:
                self.cod_delivered.append(order_id)
        if len(self.cod_delivered) >= 3 or (self.cod_delivered and time.time() > self.end_at - 20):
            # Taken off the list before the await: another user must not remit them too.
            remitted, self.cod_delivered = self.cod_delivered, []
            await self.remit(remitted)

    async def remit(self, order_ids: list[str]) -> None:
        day = datetime.now(VIETNAM).date().isoformat()
        rows = ["order_id,amount,remitted_on,carrier,carrier_reference"]
        rows += [
            f"{oid},{self.orders[oid].total},{day},GHTK,R{uuid.uuid4().hex[:10]}"
            for oid in order_ids
        ]
        answer = await self.send(
            "cod_remittance",
            "POST",
            "/api/admin/payments/cod-remittances",
            token=self.tokens["admin"],
            raw="\n".join(rows).encode(),
            headers={"Content-Type": "text/csv"},
        )
        if answer is None or answer.status != 200:
            return
        # A whole file is one transaction: imported now, or (after a failed attempt) by
        # the attempt that failed; either way each good row's order is paid by this file.
        refused = {error["line"] for error in answer.body["errors"]}
        self.stats.notes["cod_remittance_row_errors"] += len(refused)
        for line, oid in enumerate(order_ids, start=2):
            if line not in refused:
                self.apply_outcome(self.orders[oid], self.orders[oid].total, "exact", "cod")

    async def refund(self, rng: random.Random) -> None:
        if not self.refundable:
            return
        order = self.orders[self.refundable.pop(rng.randrange(len(self.refundable)))]
        left = order.paid - order.refunded
        amount = left if rng.random() < 0.5 or left < 2 else rng.randint(1, left - 1)
        key = f"refund-{uuid.uuid4().hex}"
        body = {"amount": amount, "reason": "Quả dập khi vận chuyển"}
        answer = await self.send(
            "refund",
            "POST",
            f"/api/admin/payments/orders/{order.id}/refunds",
            token=self.tokens["admin"],
            body=body,
            headers={"Idempotency-Key": key},
        )
        if answer is not None and answer.status in {200, 201} and rng.random() < 0.05:
            again = await self.send(
                "refund",
                "POST",
                f"/api/admin/payments/orders/{order.id}/refunds",
                token=self.tokens["admin"],
                body=body,
                headers={"Idempotency-Key": key},
            )
            same = again is not None and again.body.get("id") == answer.body["id"]
            self.stats.notes["refund_replay_same" if same else "refund_replay_differs"] += 1
        if answer is None or answer.status not in {200, 201}:
            self.refundable.append(order.id)
            return
        self.refunds[answer.body["id"]] = {"order_id": order.id, "amount": amount}
        if answer.body["status"] == "succeeded":
            order.refunded += amount
            self.money["refunded"] += amount
        else:
            self.stats.notes[f"refund_{answer.body['status']}"] += 1
        if order.paid > order.refunded:
            self.refundable.append(order.id)

    # -- the mix ------------------------------------------------------------------------

    async def user(self, n: int) -> None:
        rng = random.Random(self.plan["seed"] * 10_000 + n)
        kinds = ["browse", "order_catalog", "order_live", "comment", "refund", "cod", "report"]
        weights = [28, 24, 22, 8, 6, 5, 7]
        while time.time() < self.end_at:
            kind = rng.choices(kinds, weights=weights)[0]
            if kind == "browse":
                await self.browse(rng)
            elif kind in {"order_catalog", "order_live"}:
                await self.order_flow(rng, kind)
            elif kind == "comment":
                await self.comment_flow(rng)
            elif kind == "refund":
                await self.refund(rng)
            elif kind == "cod":
                await self.fulfil_cod(rng)
            else:
                await self.reports(rng)
            await asyncio.sleep(rng.uniform(0, self.plan["think_seconds"]))

    def summary(self) -> dict[str, Any]:
        return {
            "requests": dict(self.stats.requests),
            "statuses": {kind: dict(c) for kind, c in self.stats.statuses.items()},
            "latency_ms": {
                kind: {
                    "p50": round(percentile(values, 0.5), 1),
                    "p99": round(percentile(values, 0.99), 1),
                }
                for kind, values in self.stats.latencies.items()
            },
            "errors": self.stats.errors,
            "unexpected_4xx": dict(self.stats.unexpected_4xx),
            "gave_up": dict(self.stats.gave_up),
            "retries": dict(self.stats.retries),
            "notes": dict(self.stats.notes),
            "money": dict(self.money),
            "accepted": self.accepted,
            "orders": {
                oid: {
                    "kind": o.kind,
                    "method": o.method,
                    "total": o.total,
                    "paid": o.paid,
                    "refunded": o.refunded,
                    "settled": o.settled,
                    "cancelled": o.cancelled,
                    "outcome": o.outcome,
                }
                for oid, o in self.orders.items()
            },
            "refunds": self.refunds,
        }


async def load(plan: dict[str, Any]) -> dict[str, Any]:
    import aiohttp  # noqa: PLC0415

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=plan["users"] * 2)
    async with aiohttp.ClientSession(
        base_url=plan["base"], connector=connector, timeout=timeout
    ) as http:
        generator = LoadGenerator(plan, http)
        await asyncio.gather(*(generator.user(n) for n in range(plan["users"])))
    return generator.summary()


def load_generator_main(plan_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    result = asyncio.run(load(plan))
    Path(plan["out"]).write_text(json.dumps(result))


# ---- Faults, drain ----------------------------------------------------------------------


def run_faults(
    services: Services,
    processes: Processes,
    loader: subprocess.Popen[bytes],
    started: float,
    args: argparse.Namespace,
) -> None:
    """In turn PostgreSQL, Redis, the worker (`--faults`), every `fault_every` seconds while
    the load runs; a worker or beat that dies by itself meanwhile is restarted and noted."""
    turn = 0
    next_at = started + args.fault_every
    while loader.poll() is None:
        processes.supervise()
        if time.time() < next_at or time.time() > started + args.seconds - 5:
            time.sleep(0.2)
            continue
        which = args.faults[turn % len(args.faults)]
        turn += 1
        if which == "postgres":
            fault = services.restart_postgres(args.down_seconds)
        elif which == "redis":
            fault = services.restart_redis(args.down_seconds)
        else:
            fault = services.kill_worker(processes, args.down_seconds)
        print(
            f"  t={fault.started_at - started:5.1f}s {fault.kind}: back after "
            f"{fault.back_at - fault.started_at:.1f}s",
            flush=True,
        )
        next_at += args.fault_every


async def drain(dsn: str, redis_url: str, limit_seconds: float, supervise: Any) -> dict[str, Any]:
    """Until the queue is empty, every outbox event is delivered and no expired hold is
    left, twice in a row (a sweep may be queued right after an empty look)."""
    from redis.asyncio import Redis  # noqa: PLC0415

    redis = Redis.from_url(redis_url)
    started = time.time()
    calm = 0
    state: dict[str, Any] = {}
    try:
        while time.time() - started < limit_seconds:
            supervise()
            conn = await asyncpg.connect(dsn)
            try:
                undelivered = await conn.fetchval(
                    "SELECT count(*) FROM payment_outbox WHERE delivered_at IS NULL"
                )
                expired = await conn.fetchval(
                    "SELECT count(*) FROM orders WHERE status IN ('pending_payment',"
                    " 'partially_paid') AND hold_expires_at < now()"
                )
            finally:
                await conn.close()
            queued = await redis.llen(QUEUE)
            unacked = await redis.hlen("unacked")
            state = {
                "undelivered_outbox": undelivered,
                "expired_holds_left": expired,
                "queued": queued,
                "unacked": unacked,
            }
            # Messages a SIGKILLed worker had taken stay in `unacked` until the broker's
            # visibility timeout (an hour) gives them back: reported, not waited for; the
            # sweeps already did their work.
            calm = calm + 1 if not (undelivered or expired or queued) else 0
            if calm >= 2:
                break
            await asyncio.sleep(3)
    finally:
        await redis.aclose()
    return {**state, "seconds": round(time.time() - started, 1), "drained": calm >= 2}


# ---- Reconciliation ---------------------------------------------------------------------


async def initial_stock(dsn: str) -> dict[str, int]:
    """Per variant before the load: on the variant, in its items' caps, on holds (none)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT v.id,
                      v.available
                      + coalesce((SELECT sum(stock_cap) FROM livestream_items i
                                  WHERE i.variant_id = v.id), 0)
                      + coalesce((SELECT sum(quantity) FROM stock_holds h
                                  WHERE h.variant_id = v.id AND h.released_at IS NULL), 0)
                      AS units
               FROM variants v"""
        )
    finally:
        await conn.close()
    return {str(r["id"]): int(r["units"]) for r in rows}


async def reconcile(dsn: str, initial: dict[str, int], load: dict[str, Any]) -> dict[str, Any]:
    """Every figure counted from the rows in one snapshot, then compared with what the
    clients were told; `differences` must all be 0."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _reconcile(conn, initial, load)
    finally:
        await conn.close()


async def _reconcile(
    conn: asyncpg.Connection, initial: dict[str, int], load: dict[str, Any]
) -> dict[str, Any]:
    accepted: dict[str, str] = load["accepted"]
    tracked: dict[str, dict[str, Any]] = load["orders"]
    orders = {
        str(r["id"]): r
        for r in await conn.fetch(
            "SELECT id, status, source, total_amount, paid_amount, refunded_amount,"
            " excess_amount, payment_method FROM orders"
        )
    }
    entries_per_order = Counter(
        str(r["order_id"])
        for r in await conn.fetch(
            "SELECT order_id FROM livestream_queue_entries WHERE order_id IS NOT NULL"
        )
    )
    answered = set(accepted.values())
    records = await conn.fetch(
        "SELECT key, order_id FROM idempotency_records WHERE order_id IS NOT NULL"
    )
    keys_per_order = Counter(str(r["order_id"]) for r in records)
    order_of_key = {r["key"]: str(r["order_id"]) for r in records}

    # Stock, per livestream item and per variant.
    items = await conn.fetch(
        """SELECT i.id, i.variant_id, i.stock_cap, i.available,
                  coalesce(sum(h.quantity) FILTER (WHERE h.sold_at IS NULL), 0) AS held,
                  coalesce(sum(h.quantity) FILTER (WHERE h.sold_at IS NOT NULL), 0) AS sold,
                  (SELECT coalesce(sum(quantity), 0) FROM livestream_buyer_counts c
                   WHERE c.item_id = i.id) AS counted
           FROM livestream_items i
           LEFT JOIN stock_holds h ON h.livestream_item_id = i.id AND h.released_at IS NULL
           GROUP BY i.id"""
    )
    variants = await conn.fetch(
        """SELECT v.id, v.available,
                  coalesce(sum(h.quantity) FILTER (WHERE h.sold_at IS NULL), 0) AS held,
                  coalesce(sum(h.quantity) FILTER (WHERE h.sold_at IS NOT NULL), 0) AS sold,
                  (SELECT coalesce(sum(stock_cap), 0) FROM livestream_items i
                   WHERE i.variant_id = v.id) AS in_items
           FROM variants v
           LEFT JOIN stock_holds h ON h.variant_id = v.id AND h.released_at IS NULL
                AND h.livestream_item_id IS NULL
           GROUP BY v.id"""
    )
    # A cancelled order holds nothing; any other holds exactly the units on its lines.
    holds_vs_lines = await conn.fetchval(
        """SELECT count(*) FROM orders o
           WHERE CASE WHEN o.status = 'cancelled' THEN EXISTS (
                     SELECT 1 FROM stock_holds h WHERE h.order_id = o.id AND h.released_at IS NULL)
                 ELSE (SELECT coalesce(sum(quantity), 0) FROM order_lines l WHERE l.order_id = o.id)
                      <> (SELECT coalesce(sum(quantity), 0) FROM stock_holds h
                          WHERE h.order_id = o.id AND h.released_at IS NULL)
                 END"""
    )
    item_diff = sum(abs(r["stock_cap"] - r["available"] - r["held"] - r["sold"]) for r in items)
    count_diff = sum(abs(r["counted"] - r["held"] - r["sold"]) for r in items)
    variant_diff = sum(
        abs(initial.get(str(r["id"]), 0) - r["available"] - r["held"] - r["sold"] - r["in_items"])
        for r in variants
    )

    # Money.
    money = await conn.fetchrow(
        """SELECT
             (SELECT coalesce(sum(gross_amount), 0) FROM settled_lines) AS settled_gross,
             (SELECT coalesce(sum(net_amount), 0) FROM settled_lines) AS settled_net,
             (SELECT coalesce(sum(fee_amount), 0) FROM settled_lines) AS settled_fee,
             (SELECT coalesce(sum(amount), 0) FROM refunds WHERE status = 'succeeded') AS refunds,
             (SELECT coalesce(sum(gross_amount), 0) FROM refund_lines l
                JOIN refunds r ON r.id = l.refund_id WHERE r.status = 'succeeded') AS refund_gross,
             (SELECT coalesce(sum(net_amount), 0) FROM refund_lines l
                JOIN refunds r ON r.id = l.refund_id WHERE r.status = 'succeeded') AS refund_net,
             (SELECT coalesce(sum(amount), 0) FROM seller_ledger_entries
                WHERE kind IN ('sale', 'refund')) AS ledger_net,
             (SELECT coalesce(sum(CASE kind WHEN 'sale' THEN gross_amount
                                          ELSE -gross_amount END), 0)
                FROM seller_ledger_entries WHERE kind IN ('sale', 'refund')) AS ledger_gross,
             (SELECT coalesce(sum(amount), 0) FROM attribution_entries) AS attributed,
             (SELECT coalesce(sum(total_amount), 0) FROM orders
                WHERE id IN (SELECT order_id FROM settled_lines)) AS settled_order_totals,
             (SELECT coalesce(sum(amount), 0) FROM bank_transactions
                WHERE status IN ('matched', 'resolved')) AS bank_applied,
             (SELECT coalesce(sum(amount), 0) FROM bank_transactions
                WHERE status = 'unmatched') AS bank_unmatched,
             (SELECT coalesce(sum(amount), 0) FROM card_payments
                WHERE status = 'succeeded') AS card_applied,
             (SELECT coalesce(sum(amount), 0) FROM cod_remittances) AS cod_applied,
             (SELECT coalesce(sum(paid_amount), 0) FROM orders) AS orders_paid,
             (SELECT count(*) FROM payment_outbox WHERE delivered_at IS NULL) AS undelivered,
             (SELECT count(*) FROM payment_outbox) AS outbox_events,
             (SELECT count(*) FROM attribution_events) AS attribution_events,
             (SELECT count(*) FROM payment_outbox o WHERE NOT EXISTS (
                 SELECT 1 FROM attribution_events e WHERE e.event_id = o.id)) AS not_attributed"""
    )
    per_seller = await conn.fetch(
        """WITH ledger AS (
               SELECT coalesce(household_id, cooperative_id) AS seller, sum(amount) AS amount
               FROM seller_ledger_entries WHERE kind IN ('sale', 'refund') GROUP BY 1),
           attributed AS (
               SELECT coalesce(cooperative_id, household_id) AS seller, sum(amount) AS amount
               FROM attribution_entries GROUP BY 1)
           SELECT coalesce(l.seller, a.seller) AS seller, coalesce(l.amount, 0) AS ledger,
                  coalesce(a.amount, 0) AS attributed
           FROM ledger l FULL JOIN attributed a ON a.seller = l.seller"""
    )
    attributed_by_area = {
        (r["level"], r["code"]): int(r["amount"])
        for r in await conn.fetch(
            """SELECT 'commune' AS level, commune_code AS code, sum(amount) AS amount
               FROM attribution_entries GROUP BY commune_code
               UNION ALL
               SELECT 'province', province_code, sum(amount)
               FROM attribution_entries GROUP BY province_code"""
        )
    }

    client_settled = sum(o["total"] for o in tracked.values() if o["settled"])
    client_refunded = sum(o["refunded"] for o in tracked.values())
    per_order_paid = sum(
        abs(int(orders[oid]["paid_amount"]) - o["paid"])
        for oid, o in tracked.items()
        if oid in orders
    )
    per_order_refunded = sum(
        abs(int(orders[oid]["refunded_amount"]) - o["refunded"])
        for oid, o in tracked.items()
        if oid in orders
    )
    settled_states = {"paid", "fulfilling", "shipped", "delivered", "completed", "refunded"}
    status_mismatch = sum(
        1
        for oid, o in tracked.items()
        if oid in orders
        and (
            (o["settled"] and orders[oid]["status"] not in settled_states)
            or (o["cancelled"] and orders[oid]["status"] != "cancelled")
        )
    )
    m = {k: int(v) for k, v in money.items()}
    differences = {
        "accepted_orders_missing": len(answered - orders.keys()),
        "orders_nobody_was_told_of": len(orders.keys() - answered),
        "orders_without_exactly_one_key": sum(
            1
            for oid, row in orders.items()
            if row["source"] != "livestream_comment" and keys_per_order[oid] != 1
        ),
        "comment_orders_without_exactly_one_queue_entry": sum(
            1
            for oid, row in orders.items()
            if row["source"] == "livestream_comment" and entries_per_order[oid] != 1
        ),
        "keys_answered_with_another_order": sum(
            1
            for key, oid in accepted.items()
            if not key.startswith("comment:") and order_of_key.get(key) != oid
        ),
        "item_cap_minus_available_held_sold": item_diff,
        "item_buyer_counts_minus_held_sold": count_diff,
        "variant_initial_minus_available_held_sold_items": variant_diff,
        "orders_whose_holds_disagree_with_lines": int(holds_vs_lines),
        "client_settled_minus_db_settled_gross": client_settled - m["settled_gross"],
        "db_settled_gross_minus_settled_order_totals": m["settled_gross"]
        - m["settled_order_totals"],
        "client_refunded_minus_db_refunds": client_refunded - m["refunds"],
        "db_refunds_minus_refund_lines_gross": m["refunds"] - m["refund_gross"],
        "sellers_ledger_gross_minus_settled_minus_refunds": m["ledger_gross"]
        - (m["settled_gross"] - m["refunds"]),
        "sellers_ledger_net_minus_settled_net_minus_refund_net": m["ledger_net"]
        - (m["settled_net"] - m["refund_net"]),
        "attribution_minus_sellers_ledger_net": m["attributed"] - m["ledger_net"],
        "sellers_with_ledger_not_attribution": sum(
            abs(int(r["ledger"]) - int(r["attributed"])) for r in per_seller
        ),
        "money_in_minus_orders_paid": m["bank_applied"]
        + m["card_applied"]
        + m["cod_applied"]
        - m["orders_paid"],
        "per_order_paid_client_vs_db": per_order_paid,
        "per_order_refunded_client_vs_db": per_order_refunded,
        "orders_in_another_state_than_the_client_saw": status_mismatch,
        "outbox_events_undelivered": m["undelivered"],
        "outbox_events_not_attributed": m["not_attributed"],
        "attribution_events_minus_outbox_events": m["attribution_events"] - m["outbox_events"],
    }
    statuses = Counter(str(r["status"]) for r in orders.values())
    return {
        "orders": {
            "accepted_answers": len(answered),
            "rows": len(orders),
            "by_status": dict(statuses),
        },
        "stock": {
            "items": len(items),
            "item_units_sold": sum(int(r["sold"]) for r in items),
            "item_units_held": sum(int(r["held"]) for r in items),
            "variant_units_sold": sum(int(r["sold"]) for r in variants),
            "variant_units_held": sum(int(r["held"]) for r in variants),
            "items_sold_out": sum(1 for r in items if r["available"] == 0),
            "variants_sold_out": sum(1 for r in variants if r["available"] == 0),
        },
        "money": {
            **m,
            "client_settled_gross": client_settled,
            "client_refunded": client_refunded,
            "settled_minus_refunds": m["settled_gross"] - m["refunds"],
        },
        "attributed_by_area": {f"{lvl}:{code}": v for (lvl, code), v in attributed_by_area.items()},
        "differences": differences,
    }


def report_check(base: str, tokens: dict[str, str], by_area: dict[str, int]) -> dict[str, int]:
    """What the officials read over HTTP (the aggregates) against the attribution ledger."""
    out: dict[str, int] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, path, token, area in (
            (
                "commune_summary_minus_attribution",
                f"/api/impact/communes/{HUONG_TRA}/summary",
                tokens["commune_official"],
                f"commune:{HUONG_TRA}",
            ),
            (
                "province_summary_minus_attribution",
                f"/api/impact/provinces/{HUE}/summary",
                tokens["province_official"],
                f"province:{HUE}",
            ),
        ):
            body = _ok(client.get(path, headers={"Authorization": f"Bearer {token}"}), name)
            shown = sum(int(month["revenue_amount"]) for month in body["months"])
            out[name] = shown - by_area.get(area, 0)
    return out


# ---- Errors by kind ---------------------------------------------------------------------


def classify_errors(load: dict[str, Any], faults: list[Fault]) -> dict[str, Any]:
    """A 503 while PostgreSQL or Redis was down (or just back) is a clean refusal; every
    other 5xx and every lost connection to the API is unexpected."""
    windows = [f.window() for f in faults if f.kind != "worker_kill"]
    by_kind: dict[str, Counter[str]] = {}
    unexpected: list[dict[str, Any]] = []
    for error in load["errors"]:
        during = any(start <= error["at"] <= end for start, end in windows)
        if error["status"] == 503 and during:
            label = "503_during_fault"
        elif error["status"] == 0:
            label = "connection_lost"
            unexpected.append(error)
        else:
            label = f"{error['status']}_unexpected" + ("_during_fault" if during else "")
            unexpected.append(error)
        by_kind.setdefault(error["kind"], Counter())[label] += 1
    for line, count in load["unexpected_4xx"].items():
        kind = line.split(" ", 1)[0]
        by_kind.setdefault(kind, Counter())["4xx_unexpected"] += count
    for kind, count in load["gave_up"].items():
        by_kind.setdefault(kind, Counter())["gave_up"] += count
    return {
        "by_kind": {kind: dict(c) for kind, c in sorted(by_kind.items())},
        "unexpected": len(unexpected)
        + sum(load["unexpected_4xx"].values())
        + sum(load["gave_up"].values()),
        "unexpected_samples": unexpected[:20],
        "unexpected_4xx": load["unexpected_4xx"],
    }


def server_log_events(logs: Path) -> dict[str, int]:
    """Warnings and errors the server and workers logged, by process and event name (the
    server logs `LEVEL - time - logger - module - {...}`, the workers JSON lines)."""
    events: Counter[str] = Counter()
    plain = re.compile(r"^(WARNING|ERROR|CRITICAL) - .*'event': '([^']+)'")
    for path in sorted(logs.glob("*.log")):
        process = path.stem.split("-")[0]
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("level") in {"warning", "error", "critical"}:
                        events[f"{process}: {entry['level']} {entry.get('event')}"] += 1
            elif match := plain.match(line):
                events[f"{process}: {match.group(1).lower()} {match.group(2)}"] += 1
            elif line.startswith("[") and "ERROR/" in line:
                events[f"{process}: celery error {line.split(']', 1)[-1].strip()[:80]}"] += 1
    normalised: Counter[str] = Counter()
    for event, count in events.items():
        plain_event = re.sub(r"\[[0-9a-f-]{36}\]|\(\d+/\d+\)|\d+\.\d+ seconds", "", event)
        normalised[plain_event.replace("\n", " ")[:160]] += count
    return dict(normalised.most_common(40))


# ---- Main -------------------------------------------------------------------------------


def run_load_generator(plan: dict[str, Any], scratch: Path) -> subprocess.Popen[bytes]:
    plan_path = scratch / "plan.json"
    plan_path.write_text(json.dumps(plan))
    return subprocess.Popen([sys.executable, __file__, "--load-generator", str(plan_path)])


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--quick", action="store_true", help="1 minute, smaller data")
    parser.add_argument("--users", type=int, help="virtual users (24; quick 12)")
    parser.add_argument("--buyers", type=int, help="buyer accounts (300; quick 60)")
    parser.add_argument("--fault-every", type=float, help="seconds (45; quick 15)")
    parser.add_argument("--down-seconds", type=float, default=3.0)
    parser.add_argument(
        "--faults", default="postgres,redis,worker", help="which, in turn (comma-separated)"
    )
    parser.add_argument("--think-seconds", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--load-generator", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.faults = [f for f in args.faults.split(",") if f]
    if set(args.faults) - {"postgres", "redis", "worker"}:
        parser.error("--faults: postgres, redis or worker")
    if args.quick:
        args.minutes = 1.0
    args.seconds = args.minutes * 60
    args.users = args.users or (12 if args.quick else 24)
    args.buyers = args.buyers or (60 if args.quick else 300)
    args.fault_every = args.fault_every or (15.0 if args.quick else 45.0)
    args.stock = 2_000 if args.quick else 10_000
    args.scarce_stock = 40
    args.live_cap = 1_000 if args.quick else 5_000
    args.live_short_cap = 60 if args.quick else 200
    return args


def soak(
    args: argparse.Namespace, work: Path, services: Services, processes: Processes
) -> dict[str, Any]:
    """Set-up, load with faults, drain, reconcile; returns the figures."""
    run = uuid.uuid4().hex[:6]
    logs = processes.logs
    services.start()
    processes.env = server_environment(work, services)
    passwords = seed_demo(processes.env, logs)
    processes.start_server()
    base = f"http://127.0.0.1:{processes.port}"
    wait_ready(base, 120, path="/ready", interval=0.5)
    processes.start_worker()
    processes.start_beat()
    seeded = set_up(base, services.dsn, passwords, args, run)
    initial = asyncio.run(initial_stock(services.dsn))
    print(
        f"set up: {len(seeded['buyers'])} buyers, {len(seeded['variants'])} variants, "
        f"{len(seeded['items'])} live items; load for {args.seconds:.0f}s",
        flush=True,
    )
    started = time.time()
    plan = {
        **seeded,
        "base": base,
        "run": run,
        "seed": args.seed,
        "users": args.users,
        "think_seconds": args.think_seconds,
        "end_at": started + args.seconds,
        "bank_secret": services.secrets["bank"],
        "stripe_secret": services.secrets["stripe"],
        "out": str(work / "load.json"),
    }
    loader = run_load_generator(plan, work)
    run_faults(services, processes, loader, started, args)
    if loader.wait() != 0:
        raise RuntimeError("the load generator failed")
    load_seconds = time.time() - started
    load = json.loads((work / "load.json").read_text())
    print(f"load done in {load_seconds:.0f}s; draining", flush=True)
    drained = asyncio.run(drain(services.dsn, services.redis.url(0), 300, processes.supervise))
    processes.stop_workers()
    checks = asyncio.run(reconcile(services.dsn, initial, load))
    checks["differences"].update(
        report_check(base, seeded["tokens"], checks.pop("attributed_by_area"))
    )
    errors = classify_errors(load, services.faults)
    processes.stop_all()
    return summarise(
        args=args,
        load=load,
        started=started,
        load_seconds=load_seconds,
        drained=drained,
        checks=checks,
        errors=errors,
        services=services,
        processes=processes,
    )


def main() -> None:
    args = parse_arguments()
    if args.load_generator:
        load_generator_main(args.load_generator)
        return
    work = Path(tempfile.mkdtemp(prefix="mp-soak-"))
    logs = work / "logs"
    logs.mkdir()
    print(f"soak: work directory {work}", flush=True)
    services = Services(work)
    processes = Processes(env={}, logs=logs, port=free_port())
    failed = True
    try:
        result = soak(args, work, services, processes)
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps({k: result[k] for k in SHOWN}, indent=2, ensure_ascii=False))
        failed = bool(result["failures"])
        if failed:
            raise SystemExit("soak failed: " + "; ".join(result["failures"]))
    finally:
        processes.stop_all()
        services.stop()
        if failed or args.keep:
            print(f"logs kept in {logs}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


SHOWN = (
    "requests_total",
    "requests_by_kind",
    "errors_by_kind",
    "faults_injected",
    "orders",
    "money",
    "reconciliation_differences",
    "failures",
)


def summarise(
    *,
    args: argparse.Namespace,
    load: dict[str, Any],
    started: float,
    load_seconds: float,
    drained: dict[str, Any],
    checks: dict[str, Any],
    errors: dict[str, Any],
    services: Services,
    processes: Processes,
) -> dict[str, Any]:
    differences = checks["differences"]
    failures = [f"{name} = {value}" for name, value in differences.items() if value != 0]
    if errors["unexpected"]:
        failures.append(f"{errors['unexpected']} unexpected errors")
    if not drained["drained"]:
        failures.append(f"workers did not drain: {drained}")
    return {
        "minutes": args.minutes,
        "quick": args.quick,
        "load_seconds": round(load_seconds, 1),
        "users": args.users,
        "buyers": args.buyers,
        "requests_total": sum(load["requests"].values()),
        "requests_per_s": round(sum(load["requests"].values()) / load_seconds, 1),
        "requests_by_kind": dict(sorted(load["requests"].items())),
        "statuses_by_kind": load["statuses"],
        "latency_ms_by_kind": load["latency_ms"],
        "retries_by_kind": load["retries"],
        "errors_by_kind": errors["by_kind"],
        "unexpected_errors": errors["unexpected"],
        "unexpected_samples": errors["unexpected_samples"],
        "faults_injected": dict(Counter(f.kind for f in services.faults)),
        "unplanned_exits": [
            {
                "process": exit_["process"],
                "returncode": exit_["returncode"],
                "at_s": round(exit_["at"] - started, 1),
            }
            for exit_ in processes.unplanned_exits
        ],
        "faults": [
            {
                "kind": f.kind,
                "at_s": round(f.started_at - started, 1),
                "back_after_s": round(f.back_at - f.started_at, 1),
            }
            for f in services.faults
        ],
        "orders": {
            **checks["orders"],
            "client_outcomes": dict(Counter(o["outcome"] for o in load["orders"].values())),
        },
        "stock": checks["stock"],
        "money": checks["money"],
        "client_money": load["money"],
        "notes": load["notes"],
        "drain": drained,
        "reconciliation_differences": differences,
        "server_error_log_events": server_log_events(processes.logs),
        "failures": failures,
        "load_average_at_end": os.getloadavg(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "server": f"uvicorn --factory marketplace.app:create_app --workers {SERVER_WORKERS}",
        "worker": f"celery -A workers.app worker --pool prefork --concurrency {WORKER_CONCURRENCY}",
    }


if __name__ == "__main__":
    main()
