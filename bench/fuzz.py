"""Schemathesis over every /api/ operation as every role, with many more examples than the
test suite's bounded run (tests/test_api_fuzz.py); same server, seed and checks.

    uv run python bench/fuzz.py                    # 100 examples per operation and role
    uv run python bench/fuzz.py --max-examples 20

Uses the PostgreSQL and Redis the tests use (TEST_DATABASE_URL / TEST_REDIS_URL, else the local
servers, else embedded ones); the database is its own (created, migrated, seeded, dropped) and
Redis logical DB 12 by default (`--redis-db`; nothing is flushed). Prints operations and cases
per role and every failure (first per operation and role, with a curl line); exits 1 on any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fuzz import ROLE_LOGINS, fuzz_role, fuzz_server, load_schema
from tests.support.services import resolve_service_urls, stop_embedded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--role", action="append", choices=list(ROLE_LOGINS))
    args = parser.parse_args()
    services = resolve_service_urls()
    redis = make_url(services.redis_url.replace("redis://", "postgresql://", 1))
    redis_url = f"redis://{redis.host}:{redis.port or 6379}/{args.redis_db}"
    failures = 0
    total_cases = 0
    try:
        with (
            tempfile.TemporaryDirectory(prefix="mp-fuzz-") as work,
            fuzz_server(services, redis_url, Path(work)) as server,
        ):
            schema = load_schema(server)
            print(f"{'role':<20} {'operations':>10} {'cases':>7} {'failures':>8} {'seconds':>8}")
            for role in args.role or list(ROLE_LOGINS):
                started = time.monotonic()
                report = fuzz_role(schema, server, role, args.max_examples)
                elapsed = time.monotonic() - started
                total_cases += report.cases
                failures += len(report.failures)
                print(
                    f"{role:<20} {report.operations:>10} {report.cases:>7} "
                    f"{len(report.failures):>8} {elapsed:>8.1f}",
                    flush=True,
                )
                print(f"{'':<20} statuses {dict(sorted(report.statuses.items()))}", flush=True)
                for label, detail in report.failures.items():
                    print(f"\n--- {role}: {label}\n{detail}\n", flush=True)
            print(f"total cases {total_cases}, failures {failures}")
    finally:
        stop_embedded()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
