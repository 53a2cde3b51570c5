"""The public catalog under load: 50,000 products, listing and diacritic-free search.

    uv run python bench/catalog.py [--products 50000] [--seconds 15] [--connections 64]

What it does, on a database of its own (created, migrated, dropped at the end):
1. Seeds with COPY: 5,000 households in 6 communes of Huế and Cần Thơ with a review each
   (poor, near-poor, ... in realistic shares for sellers on this platform), 20 cooperatives
   of 25 members, 50,000 products (9 in 10 listed; 1 in 10 a cooperative's, with a lot and
   its members' contributions) named from 60 Vietnamese specialties, 2 variants each,
   VietGAP/OCOP certificates on 1 product in 5 (some expired), a READY photo on 3 in 5.
   Search text is folded in Python by the same function the service uses.
2. Starts the production server as a user runs it (`uvicorn --factory
   marketplace.app:create_app`, 2 worker processes) in a subprocess.
3. From a separate load-generator process (aiohttp, closed loop, `--connections` keep-alive
   connections), for `--seconds` each: the first page of the public listing, a search
   without diacritics (`q=buoi da xanh`, which matches "Bưởi da xanh ..."), the listing
   with filters (province + in season + sold by poor households), and `/health` of the
   same server as the ceiling. The same URL over and over is what the public pages' cache
   (a few seconds per worker, `marketplace.catalog.page_cache`) serves from memory, as it
   would a popular page in production; so two more targets send a different query on every
   request (`listing_varied`: 50,000 price caps; `search_varied`: 7 words x price caps),
   which the cache cannot help with: the cost of the database path itself.

Each target is one load-generator run, and the CPU time the server's processes and the
database's backends spent during it is divided by the requests sent (warm-up included): on a
machine shared with other work, CPU per request moves far less than requests per second.

Figures are printed and written to bench/results/catalog.json. Goals: listing and search
>= 0.4 x /health requests per second, p99 <= 50 ms.
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
from typing import IO, Any

import asyncpg
from harness import create_database, drop_database, free_port, percentile, wait_ready

RESULTS = Path(__file__).parent / "results" / "catalog.json"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
COMMUNES = (
    ("46", "19996"),  # Phường Hương Trà, Huế
    ("46", "20017"),  # Phường Kim Trà, Huế
    ("46", "20035"),  # Xã Bình Điền, Huế
    ("92", "31299"),  # Xã Phong Điền, Cần Thơ
    ("92", "31258"),  # Xã Thới Lai, Cần Thơ
    ("92", "31135"),  # Phường Ninh Kiều, Cần Thơ
)
STATUSES = (
    ("poor", 0.25),
    ("near_poor", 0.20),
    ("newly_escaped", 0.10),
    ("average_living_standard", 0.15),
    ("not_poor", 0.25),
    ("unreviewed", 0.05),
)
SPECIALTIES = (
    ("Bưởi da xanh", "fruit"), ("Bưởi Năm Roi", "fruit"), ("Bưởi Phúc Trạch", "fruit"),
    ("Cam V2", "fruit"), ("Cam Xã Đoài", "fruit"), ("Cam sành", "fruit"),
    ("Quýt Thanh Bình", "fruit"), ("Quýt Hương Cần", "fruit"), ("Quýt hồng Lai Vung", "fruit"),
    ("Thanh trà", "fruit"), ("Ổi VietGAP Hương Xuân", "fruit"), ("Ổi nữ hoàng", "fruit"),
    ("Xoài cát Hòa Lộc", "fruit"), ("Xoài tứ quý", "fruit"), ("Sầu riêng Ri6", "fruit"),
    ("Sầu riêng Monthong", "fruit"), ("Măng cụt Lái Thiêu", "fruit"), ("Chôm chôm Java", "fruit"),
    ("Vú sữa Lò Rèn", "fruit"), ("Thanh long ruột đỏ", "fruit"), ("Nhãn lồng Hưng Yên", "fruit"),
    ("Vải thiều Lục Ngạn", "fruit"), ("Dừa xiêm xanh", "fruit"), ("Mít Thái", "fruit"),
    ("Chuối già Nam Mỹ", "fruit"), ("Dưa hấu Long An", "fruit"), ("Mận hậu Mộc Châu", "fruit"),
    ("Hồng xiêm Xuân Đỉnh", "fruit"), ("Na dai Chi Lăng", "fruit"), ("Khế ngọt", "fruit"),
    ("Rau muống", "vegetable"), ("Cải ngọt hữu cơ", "vegetable"), ("Bí đỏ", "vegetable"),
    ("Khoai lang tím Nhật", "vegetable"), ("Hành tím Vĩnh Châu", "vegetable"),
    ("Tỏi Lý Sơn", "vegetable"), ("Gừng sẻ", "vegetable"), ("Nấm rơm", "vegetable"),
    ("Gạo ST25", "rice_grain"), ("Gạo nàng thơm Chợ Đào", "rice_grain"),
    ("Gạo lứt huyết rồng", "rice_grain"), ("Nếp cái hoa vàng", "rice_grain"),
    ("Cốm An Thuận", "processed"), ("Mè xửng Huế", "processed"),
    ("Mật ong hoa cà phê", "processed"),
    ("Cà phê Robusta rang mộc", "processed"), ("Hồ tiêu Phú Quốc", "processed"),
    ("Nước mắm Nam Ô", "processed"), ("Chè Thái Nguyên", "processed"), ("Mứt gừng", "processed"),
    ("Bánh tráng Trảng Bàng", "processed"), ("Tôm khô Cà Mau", "seafood"),
    ("Cá lóc đồng", "seafood"), ("Mực một nắng", "seafood"), ("Gà ta thả vườn", "livestock"),
    ("Vịt xiêm", "livestock"), ("Trứng gà ta", "livestock"), ("Heo đen bản địa", "livestock"),
    ("Nón lá Huế", "handicraft"), ("Chiếu cói Nga Sơn", "handicraft"),
)  # fmt: skip
GRADES = ("loại 1", "loại đặc biệt", "hữu cơ", "VietGAP", "vườn nhà", "mới thu hoạch", "")
PLACES = ("Hương Trà", "Hương Xuân", "Hương Cần", "Phong Điền", "Thới Lai", "Kim Trà", "")
CATEGORY_LABELS = {
    "fruit": "Trái cây",
    "vegetable": "Rau củ",
    "rice_grain": "Lúa gạo, ngũ cốc",
    "processed": "Sản phẩm chế biến",
    "seafood": "Thủy hải sản",
    "livestock": "Chăn nuôi",
    "handicraft": "Thủ công mỹ nghệ",
}
TODAY = datetime.now(UTC).date()
VARIED = 50_000
WARM_UP_SECONDS = 2.0


# ---- Set-up -----------------------------------------------------------------------------


def _mask(months: list[int]) -> int:
    return sum(1 << (m - 1) for m in set(months))


async def seed(dsn: str, products: int, rng: random.Random) -> dict[str, Any]:  # noqa: PLR0915 - one linear script
    from marketplace.catalog.models import Category  # noqa: PLC0415
    from marketplace.catalog.service import new_trace_code, search_text  # noqa: PLC0415
    from marketplace.text import fold  # noqa: PLC0415

    conn = await asyncpg.connect(dsn)
    now = datetime.now(UTC)
    households: list[tuple[uuid.UUID, str, str]] = []
    household_rows, review_rows = [], []
    for n in range(max(5_000, products // 10)):
        province, commune = COMMUNES[n % len(COMMUNES)]
        hid = uuid.uuid4()
        households.append((hid, province, commune))
        household_rows.append(
            (hid, f"Hộ Nguyễn Văn {n}", rng.randint(1, 7), commune, province, "2025-07",
             "Thôn 1", f"09{n:08d}", f"{n:064d}", "encrypted", now, now)
        )  # fmt: skip
        status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
        if status != "unreviewed":
            review_rows.append(
                (uuid.uuid4(), hid, status, date(2025, 12, 15), "07/2021/ND-CP", f"{n}/QĐ",
                 "UBND", False, now, now)
            )  # fmt: skip
    await conn.copy_records_to_table(
        "households",
        records=household_rows,
        columns=["id", "head_name", "members_count", "commune_code", "province_code",
                 "admin_version", "village", "phone", "national_id_hash",
                 "national_id_encrypted", "created_at", "updated_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "household_status_entries",
        records=review_rows,
        columns=["id", "household_id", "status", "review_date", "standard_code",
                 "decision_number", "deciding_authority", "mismatch", "created_at", "updated_at"],
    )  # fmt: skip

    coop_rows, member_rows, coops = [], [], []
    for n in range(20):
        province, commune = COMMUNES[n % len(COMMUNES)]
        cid = uuid.uuid4()
        members = [h[0] for h in households if h[2] == commune][n * 25 : n * 25 + 25]
        coops.append((cid, province, commune, members))
        coop_rows.append((cid, f"HTX Nông nghiệp {n}", commune, province, "2025-07", "", now, now))
        member_rows += [(uuid.uuid4(), cid, m, date(2023, 3, 1), now, now) for m in members]
    await conn.copy_records_to_table(
        "cooperatives",
        records=coop_rows,
        columns=["id", "name", "commune_code", "province_code", "admin_version", "description",
                 "created_at", "updated_at"],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "cooperative_members",
        records=member_rows,
        columns=["id", "cooperative_id", "household_id", "joined_on", "created_at", "updated_at"],
    )

    product_rows, variant_rows, cert_rows, image_rows = [], [], [], []
    lot_rows, contribution_rows = [], []
    start = now - timedelta(days=365)
    for n in range(products):
        pid = uuid.uuid4()
        base, category = SPECIALTIES[rng.randrange(len(SPECIALTIES))]
        name = " ".join(p for p in (base, rng.choice(GRADES), rng.choice(PLACES)) if p)
        description = f"{base} của bà con nông dân, thu hoạch tại vườn, đóng hộp cẩn thận."
        is_coop = rng.random() < 0.1
        if is_coop:
            cid, province, commune, members = coops[rng.randrange(len(coops))]
            hid = None
        else:
            hid, province, commune = households[rng.randrange(len(households))]
            cid = None
        region = f"{rng.choice(PLACES[:-1])}, {'Huế' if province == '46' else 'Cần Thơ'}"
        first_month = rng.randint(1, 12)
        months = [(first_month + k - 1) % 12 + 1 for k in range(rng.randint(2, 6))]
        box, crate = (
            rng.randrange(60_000, 400_000, 5_000),
            rng.randrange(400_000, 2_000_000, 10_000),
        )
        created = start + timedelta(seconds=rng.randrange(365 * 24 * 3600))
        status = "listed" if rng.random() < 0.9 else rng.choice(("draft", "unlisted"))
        product_rows.append(
            (pid, "cooperative" if is_coop else "household", hid, cid, name, description,
             category, region, _mask(months), province, commune, "2025-07", status,
             search_text(name, region, Category(category), description), fold(name),
             min(box, crate), created, created)
        )  # fmt: skip
        variant_rows += [
            (uuid.uuid4(), pid, "hộp 2 kg", box, rng.randint(0, 200), 2000, True, created,
             created),
            (uuid.uuid4(), pid, "thùng 10 kg", crate, rng.randint(0, 50), 10_000, True, created,
             created),
        ]  # fmt: skip
        if rng.random() < 0.2:
            kind = rng.choice(("vietgap", "ocop"))
            valid_from = TODAY - timedelta(days=rng.randint(30, 1200))
            cert_rows.append(
                (uuid.uuid4(), kind, pid, "QUACERT" if kind == "vietgap" else "UBND tỉnh",
                 f"CN-{n}", "", rng.randint(3, 5) if kind == "ocop" else None, valid_from,
                 valid_from + timedelta(days=730 if kind == "vietgap" else 1095), now, now)
            )  # fmt: skip
        if rng.random() < 0.6:
            iid = uuid.uuid4()
            renditions = json.dumps(
                {"320": f"renditions/{iid}/320.webp", "1280": f"renditions/{iid}/1280.webp"}
            )
            image_rows.append(
                (iid, pid, f"uploads/{pid}/{iid}", "ready", "image/jpeg", "anh.jpg", 1600, 1200,
                 renditions, 0, created, created)
            )  # fmt: skip
        if is_coop:
            lid = uuid.uuid4()
            lot_rows.append(
                (lid, pid, new_trace_code() + f"{n:x}"[-4:], TODAY - timedelta(days=10), 1000,
                 "kg", "cooperative", None, cid, created, created)
            )  # fmt: skip
            for member in rng.sample(members, 3):
                contribution_rows.append((uuid.uuid4(), lid, member, 300, created, created))
    for table, rows, columns in (
        ("products", product_rows,
         ["id", "seller_kind", "household_id", "cooperative_id", "name", "description",
          "category", "region", "season_mask", "province_code", "commune_code", "admin_version",
          "status", "search_text", "search_name", "min_price_amount", "created_at",
          "updated_at"]),
        ("variants", variant_rows,
         ["id", "product_id", "label", "price_amount", "available", "weight_grams", "is_active",
          "created_at", "updated_at"]),
        ("certifications", cert_rows,
         ["id", "kind", "product_id", "certifier", "number", "scope", "stars", "valid_from",
          "valid_to", "created_at", "updated_at"]),
        ("product_images", image_rows,
         ["id", "product_id", "object_key", "status", "declared_content_type",
          "original_filename", "width", "height", "renditions", "position", "created_at",
          "updated_at"]),
        ("lots", lot_rows,
         ["id", "product_id", "trace_code", "harvest_date", "quantity", "unit", "seller_kind",
          "household_id", "cooperative_id", "created_at", "updated_at"]),
        ("lot_contributions", contribution_rows,
         ["id", "lot_id", "household_id", "quantity", "created_at", "updated_at"]),
    ):  # fmt: skip
        await conn.copy_records_to_table(table, records=rows, columns=columns)
    await conn.execute("VACUUM ANALYZE")
    matching = await conn.fetchval(
        "SELECT count(*) FROM products "
        "WHERE status = 'listed' AND search_text LIKE '%buoi da xanh%'"
    )
    await conn.close()
    return {
        "households": len(household_rows),
        "products": len(product_rows),
        "variants": len(variant_rows),
        "certifications": len(cert_rows),
        "images": len(image_rows),
        "search_matches": matching,
    }


# ---- Load ---------------------------------------------------------------------------------


async def load(base: str, paths: list[str], seconds: float, connections: int) -> dict[str, Any]:
    """Closed loop: `connections` keep-alive connections, each sending its next request as
    soon as the last one is answered (and read whole). Requests take `paths` in turn."""
    import aiohttp  # noqa: PLC0415 - only the load-generator process needs it

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    turn = 0
    sent = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as client:
        for _ in range(connections):  # open the connections; the first query plans are made
            async with client.get(paths[0]) as response:
                await response.read()
            sent += 1
        # Two seconds not counted: every worker's pool, prepared statements and caches warm.
        deadline = time.perf_counter() + WARM_UP_SECONDS + seconds
        counting_from = time.perf_counter() + WARM_UP_SECONDS

        async def one() -> None:
            nonlocal turn, sent
            while time.perf_counter() < deadline:
                path = paths[turn % len(paths)]
                turn += 1
                started = time.perf_counter()
                async with client.get(path) as response:
                    await response.read()
                sent += 1
                if started < counting_from:
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        await asyncio.gather(*(one() for _ in range(connections)))
    return {
        "path": paths[0] if len(paths) == 1 else f"{paths[0]} ... ({len(paths)} distinct)",
        "requests": len(latencies),
        "per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "statuses": statuses,
        "requests_sent": sent,
    }


def cpu_by_process(server_pid: int, database: str) -> dict[str, dict[int, float]]:
    """User + system CPU seconds so far of the server and its workers, and of the PostgreSQL
    backends connected to the bench database (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, dict[int, float]] = {"server": {}, "database": {}}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        pid, cpu = int(entry.name), (int(stat[11]) + int(stat[12])) / tick
        if pid == server_pid or int(stat[1]) == server_pid:
            out["server"][pid] = cpu
        elif command.startswith("postgres:") and f" {database} " in command:
            out["database"][pid] = cpu
    return out


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """A process started in between counts from 0; one that ended in between is lost."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def run_load_generator(base: str, plan: dict[str, Any]) -> dict[str, Any]:
    """In a separate process, so the client's CPU is not the server's."""
    out = subprocess.run(
        [sys.executable, __file__, "--load-generator"],
        input=json.dumps({"base": base, **plan}),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def start_server(
    sqlalchemy_url: str, port: int, workers: int, var_dir: str, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MARKETPLACE_MODE": "embedded",
        "DATABASE_URL": sqlalchemy_url,
        "REDIS_URL": REDIS_URL,
        "MARKETPLACE_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
        # 16 connections a worker: the box has 2 cores, more only queue inside PostgreSQL,
        # and max_connections (100) is shared with everything else on the machine.
        "DATABASE_POOL_SIZE": "12",
        "DATABASE_MAX_OVERFLOW": "4",
        "PORT": str(port),
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
            # What uvicorn[standard] picks anyway; said here so the figures name them.
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def measure(sqlalchemy_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, load it from another process, stop it; say if it logged errors."""
    port = free_port()
    with tempfile.TemporaryDirectory() as var_dir, (Path(var_dir) / "server.log").open("wb") as log:
        server = start_server(sqlalchemy_url, port, args.server_workers, var_dir, log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base)
            words = ["buoi", "cam sanh", "xoai cat", "gao st25", "sau rieng", "mat ong", "quyt"]
            targets = {
                "health": ["/health"],
                "listing": ["/api/products"],
                "search": ["/api/products?q=buoi%20da%20xanh"],
                "filtered_listing": ["/api/products?province=46&in_season=true&sold_by_poor=true"],
                # Every request a different query: what the page cache cannot help with.
                "listing_varied": [
                    f"/api/products?price_max={2_000_000 - n}" for n in range(VARIED)
                ],
                "search_varied": [
                    f"/api/products?q={words[n % len(words)]}&price_max={3_000_000 - n}"
                    for n in range(VARIED)
                ],
            }
            reads = {}
            database = sqlalchemy_url.rsplit("/", 1)[1]
            for name, paths in targets.items():
                # One load-generator run per target, so the CPU the server workers and the
                # database backends spent is known per request: on a machine shared with
                # other work that is steadier than requests per second.
                before = cpu_by_process(server.pid, database)
                plan = {"seconds": args.seconds, "connections": args.connections}
                result = run_load_generator(base, {**plan, "targets": {name: paths}})[name]
                after = cpu_by_process(server.pid, database)
                sent = result.pop("requests_sent")
                for side in ("server", "database"):
                    spent = cpu_spent(before[side], after[side])
                    result[f"{side}_cpu_ms_per_request"] = round(spent * 1000 / sent, 3)
                reads[name] = result
        finally:
            server.terminate()
            server.wait(timeout=30)
        errors = [
            line
            for line in (Path(var_dir) / "server.log").read_text().splitlines()
            if '"level": "error"' in line or "Traceback" in line
        ]
        if errors:
            print(f"server logged {len(errors)} errors; first: {errors[0][:800]}")
    return reads


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--keep-database", action="store_true", help="for profiling afterwards")
    parser.add_argument("--load-generator", action="store_true", help="plan on stdin")
    args = parser.parse_args()
    if args.load_generator:
        plan = json.loads(sys.stdin.read())
        results = {
            name: asyncio.run(load(plan["base"], paths, plan["seconds"], plan["connections"]))
            for name, paths in plan["targets"].items()
        }
        print(json.dumps(results))
        return

    from marketplace.schema import upgrade_to_head  # noqa: PLC0415

    name = f"mp_bench_catalog_{uuid.uuid4().hex[:8]}"
    dsn = asyncio.run(create_database(name))
    sqlalchemy_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        upgrade_to_head(sqlalchemy_url)
        started = time.perf_counter()
        seeded = asyncio.run(seed(dsn, args.products, random.Random(2026)))
        print(f"seeded {seeded} in {time.perf_counter() - started:.1f} s", flush=True)

        load_at_start = os.getloadavg()
        reads = measure(sqlalchemy_url, args)

        health = reads["health"]["per_s"]
        result = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "load_average_at_start": load_at_start,
                "load_average_at_end": os.getloadavg(),
            },
            "seeded": seeded,
            "connections": args.connections,
            "server": (
                f"uvicorn --factory marketplace.app:create_app --workers {args.server_workers}"
                " --loop uvloop --http httptools --no-access-log"
            ),
            "load_generator": "aiohttp, separate process, closed loop",
            "seconds_per_target": args.seconds,
            **reads,
            "listing_vs_health": round(reads["listing"]["per_s"] / health, 3),
            "search_vs_health": round(reads["search"]["per_s"] / health, 3),
            "listing_varied_vs_health": round(reads["listing_varied"]["per_s"] / health, 3),
            "search_varied_vs_health": round(reads["search_varied"]["per_s"] / health, 3),
            "goals": {"vs_health": 0.4, "p99_ms": 50},
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(json.dumps(result, indent=2, ensure_ascii=False))
    finally:
        if args.keep_database:
            print(f"kept database {name} ({sqlalchemy_url})")
        else:
            asyncio.run(drop_database(name))


if __name__ == "__main__":
    main()
