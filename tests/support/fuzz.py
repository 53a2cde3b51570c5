"""Schemathesis over the running app, once per role: shared by tests/test_api_fuzz.py and
bench/fuzz.py so the suite's bounded run and the bench's long run check the same things.

The server is real (uvicorn in its own process) on a database of its own, seeded with the demo
data, so every role gets a real token and generated requests reach real rows and guards.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from marketplace.demo import demo_passwords, load_demo_data
from marketplace.schema import upgrade_to_head
from marketplace.settings import Settings
from tests.support.services import ServiceUrls
from tests.support.threads import in_thread

ROOT = Path(__file__).resolve().parents[2]

ROLE_LOGINS: dict[str, str | None] = {
    "anonymous": None,
    "buyer": "khach@demo.vn",
    "farmer": "nongdan@demo.vn",
    "cooperative_manager": "htx@demo.vn",
    "host": "host@demo.vn",
    "helper": "hotro@demo.vn",
    "commune_official": "canbo.xa@demo.vn",
    "province_official": "canbo.tinh@demo.vn",
    "admin": "admin@demo.vn",
}

# Signed webhooks refuse anything unsigned before parsing; fuzzing them only measures the
# signature check, which the webhook tests cover. Logging out would revoke the role's token.
SKIPPED_PATHS = (
    "/api/payments/bank/webhook",
    "/api/payments/stripe/webhook",
    "/api/auth/logout",
    "/api/auth/logout-all",
)
PROBLEM_FIELDS = ("type", "title", "status", "detail", "code")


@dataclass
class FuzzServer:
    base_url: str
    tokens: dict[str, str | None]
    log_path: Path


@dataclass
class RoleReport:
    role: str
    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    """First failure per operation: `METHOD /path` -> schemathesis's report."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(coro_fn: Callable[[], Any]) -> None:
    in_thread(lambda: asyncio.run(coro_fn()))


@contextmanager
def fuzz_server(services: ServiceUrls, redis_url: str, work_dir: Path) -> Iterator[FuzzServer]:
    """Own database (created, migrated, seeded, dropped), own var dir, uvicorn on a free port."""
    admin_url = make_url(services.admin_database_url)
    name = f"mp_fuzz_{uuid.uuid4().hex[:8]}"
    url = admin_url.set(database=name).render_as_string(hide_password=False)

    async def admin_sql(statement: str) -> None:
        admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        async with admin.connect() as conn:
            await conn.execute(text(statement))
        await admin.dispose()

    var_dir = work_dir / "var"
    port = _free_port()
    env = {
        **os.environ,
        "MARKETPLACE_MODE": "embedded",
        "MARKETPLACE_VAR_DIR": str(var_dir),
        "DATABASE_URL": url,
        "DATABASE_POOL_SIZE": "5",
        "REDIS_URL": redis_url,
        "SECRET_KEY": "fuzz-secret-key-" + "x" * 32,
        "PII_HMAC_KEY": "fuzz-pii-hmac-key-" + "y" * 32,
        "PII_ENCRYPTION_KEY": "ZmFrZS1rZXktZm9yLXRlc3RzLW9ubHktMzJieXRlcyE=",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST": "1024",
        # Every role logs in once, and generated login requests must not lock anyone out.
        "LOGIN_ATTEMPTS_PER_IP": "1000000",
        "LOGIN_ATTEMPTS_PER_ACCOUNT": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    _run(lambda: admin_sql(f'CREATE DATABASE "{name}"'))
    process: subprocess.Popen[bytes] | None = None
    log_path = work_dir / "server.log"
    try:
        in_thread(lambda: upgrade_to_head(url))
        settings = Settings.from_env(env)
        _run(lambda: load_demo_data(settings))
        passwords = demo_passwords(var_dir)
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "marketplace.app:create_app",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-access-log",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_up(base_url, process)
        tokens: dict[str, str | None] = {}
        with httpx.Client(base_url=base_url, timeout=30) as client:
            for role, login in ROLE_LOGINS.items():
                if login is None:
                    tokens[role] = None
                    continue
                response = client.post(
                    "/api/auth/login", json={"login": login, "password": passwords[login]}
                )
                response.raise_for_status()
                tokens[role] = response.json()["token"]
        yield FuzzServer(base_url=base_url, tokens=tokens, log_path=log_path)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _run(lambda: admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fuzz server exited with {process.returncode}")
        try:
            if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("fuzz server did not answer /health within 60 s")


def problem_json(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any
) -> None:
    """Every refusal speaks RFC 9457 with our stable `code`, so clients can branch on it."""
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} with content-type {content_type!r}"
    )
    body = response.json()
    missing = [name for name in PROBLEM_FIELDS if name not in body]
    assert not missing, f"problem+json body lacks {missing}: {body!r}"
    assert body["status"] == response.status_code, f"status {body['status']} in body"


CHECKS = [not_a_server_error, problem_json, status_code_conformance, response_schema_conformance]


def load_schema(server: FuzzServer) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(server.base_url + "/schema/openapi.json")
    return schema.include(path_regex=r"^/api/").exclude(path=list(SKIPPED_PATHS))


def fuzz_role(
    schema: schemathesis.BaseSchema, server: FuzzServer, role: str, max_examples: int
) -> RoleReport:
    """Every operation, `max_examples` generated cases each (valid and invalid input mixed), no
    shrinking: the report names the first failing case per operation with a curl line."""
    token = server.tokens[role]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    report = RoleReport(role=role)
    session = requests.Session()
    for result in schema.get_all_operations():
        report.operations += 1
        _fuzz_operation(
            result.ok(),
            server=server,
            headers=headers,
            session=session,
            report=report,
            max_examples=max_examples,
        )
    return report


def _fuzz_operation(
    operation: schemathesis.APIOperation,
    *,
    server: FuzzServer,
    headers: dict[str, str],
    session: requests.Session,
    report: RoleReport,
    max_examples: int,
) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    strategy = operation.as_strategy(GenerationMode.POSITIVE)
    with suppress(Exception):  # an operation without inputs has nothing to make invalid
        strategy = strategy | operation.as_strategy(GenerationMode.NEGATIVE)

    @given(case=strategy)
    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        report.cases += 1
        if label in report.failures:
            return
        # The role's own token, never a generated one: a generated Authorization header would
        # turn the case into an anonymous 401.
        case.headers = {
            name: value
            for name, value in (case.headers or {}).items()
            if name.lower() != "authorization"
        } | headers
        try:
            response = case.call(base_url=server.base_url, session=session, timeout=30)
            report.statuses[response.status_code] += 1
            case.validate_response(
                response,
                checks=CHECKS,
                headers=headers,
                transport_kwargs={"base_url": server.base_url, "session": session},
            )
        except FailureGroup as failure:
            report.failures[label] = str(failure)
        except requests.RequestException as error:
            report.failures[label] = f"no response: {error!r}"

    run()
