"""PostgreSQL, Redis, the API and Celery workers that the fault tests start, stop and kill
themselves: every stop goes to a process this suite started (its pid, its data directory,
its port), never to the machine's services on 5432/6379 and never by process name."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from marketplace.embedded import EmbeddedServiceError, die_with_parent, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATABASE = "marketplace"


def _pgserver() -> Any:
    """pgserver's command wrappers (initdb, pg_ctl) around its bundled PostgreSQL binaries."""
    from pgserver import _commands  # noqa: PLC0415 - only the fault tests run PostgreSQL

    return _commands


class OwnedPostgres:
    """A PostgreSQL cluster in `root`, on a free loopback TCP port, started and stopped with
    `pg_ctl -D <our data directory>`, which signals the postmaster whose pid that directory
    holds: ours. PostgreSQL refuses to run as root, so as root it runs as pgserver's user."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "pgdata"
        self.port = free_port()
        self._user: str | None = "pgserver" if os.geteuid() == 0 else None

    @property
    def log_path(self) -> Path:
        return self.pgdata / "server.log"

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, IndexError, ValueError):
            return None

    def init(self) -> None:
        commands = _pgserver()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            from pgserver import utils  # noqa: PLC0415 - root only

            utils.ensure_user_exists(self._user)
            utils.ensure_prefix_permissions(self.pgdata)
            bin_dir = commands.POSTGRES_BIN_PATH
            readable = 0o044
            utils.ensure_folder_permissions(bin_dir, 0o011 | readable)
            utils.ensure_folder_permissions(bin_dir.parent / "lib", readable)
            import pwd  # noqa: PLC0415 - root only

            entry = pwd.getpwnam(self._user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        commands.initdb(
            ["--auth=trust", "--encoding=utf8", "--no-sync", "-U", "postgres"],
            pgdata=self.pgdata,
            user=self._user,
            timeout=120,
        )

    def start(self) -> None:
        """Start (crash recovery first after an immediate stop) and wait until it accepts."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.pgdata} -c fsync=off"
        try:
            _pgserver().pg_ctl(
                ["-w", "-t", "60", "-o", options, "-l", str(self.log_path), "start"],
                pgdata=self.pgdata,
                user=self._user,
                timeout=90,
            )
        except subprocess.CalledProcessError as exc:
            raise EmbeddedServiceError(f"PostgreSQL did not start; see {self.log_path}") from exc
        wait_for_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        """`fast` rolls back open transactions and cuts every connection; `immediate`
        aborts without a checkpoint, as a crash would (the next start recovers)."""
        if self.pid is None:
            return
        _pgserver().pg_ctl(
            ["-w", "-t", "60", "-m", mode, "stop"], pgdata=self.pgdata, user=self._user, timeout=90
        )


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise EmbeddedServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class OwnedProcess:
    """A child in a process group of its own, so a kill reaches it and its children (a
    prefork worker's pool) and nothing else."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and argv
                self.args,
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - prctl only, before threads
            )
        finally:
            log.close()

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL to the whole group: no warm shutdown, nothing acknowledged or restored."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM (warm shutdown), then SIGKILL if it lingers; the exit code, None if killed."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is not None:
            return process.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""


def api_process(env: dict[str, str], port: int, log_path: Path) -> OwnedProcess:
    """The production server, as `marketplace serve` runs it: uvicorn on the app factory."""
    return OwnedProcess(
        "api",
        [sys.executable, "-m", "uvicorn", "--factory", "marketplace.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
         "--log-level", "warning"],
        env,
        log_path,
    )  # fmt: skip


def wait_until_healthy(process: OwnedProcess, base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process is None or process.process.poll() is not None:
            raise EmbeddedServiceError(f"{process.name} exited:\n{process.output()}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise EmbeddedServiceError(f"{process.name} not healthy in {timeout}s:\n{process.output()}")
