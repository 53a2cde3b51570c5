"""The `marketplace` command: demo, db upgrade, create-admin, seed.

`marketplace demo` is the one-command default run: with no DATABASE_URL / REDIS_URL it starts
the embedded PostgreSQL and Redis under ./var/, migrates, loads the demo data once, then
runs the API, a Celery worker and beat as child processes until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import click

from marketplace.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServiceError,
    die_with_parent,
    embedded_environment,
)
from marketplace.settings import Settings, SettingsError

STOP_GRACE_SECONDS = 5.0


@dataclass
class Backing:
    """The database and Redis a command talks to, embedded or given by the environment."""

    env: dict[str, str]
    stoppers: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)

    def stop(self) -> None:
        for service in reversed(self.stoppers):
            service.stop()
        self.stoppers.clear()


def var_dir_from(env: Mapping[str, str]) -> Path:
    return Path(env.get("MARKETPLACE_VAR_DIR", "var"))


@contextlib.contextmanager
def backing_services(*, need_redis: bool) -> Iterator[Backing]:
    env = dict(os.environ)
    var_dir = var_dir_from(env)
    backing = Backing(env=env)
    try:
        database_url = env.get("DATABASE_URL", "")
        if not database_url:
            pg = EmbeddedPostgres(var_dir)
            pg.start()
            backing.stoppers.append(pg)
            database_url = pg.url()
        redis_url = env.get("REDIS_URL", "")
        if not redis_url and need_redis:
            redis = EmbeddedRedis(var_dir)
            redis.start()
            backing.stoppers.append(redis)
            redis_url = redis.url()
        if env.get("MARKETPLACE_MODE", "embedded") == "embedded":
            backing.env = embedded_environment(var_dir, database_url, redis_url)
            backing.env.setdefault("LOG_JSON", "false")
        else:
            backing.env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url})
        yield backing
    finally:
        backing.stop()


def load_settings(env: Mapping[str, str]) -> Settings:
    try:
        return Settings.from_env(env)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """Livestream marketplace for farming households."""


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (alembic upgrade heads)."""
    from marketplace.schema import upgrade_to_head  # noqa: PLC0415

    with backing_services(need_redis=False) as backing:
        settings = load_settings(backing.env)
        upgrade_to_head(settings.database.url)
        click.echo("database at head")


@main.command("create-admin")
@click.option("--login", required=True, help="E-mail or phone the admin logs in with.")
@click.option("--name", "display_name", default="Quản trị viên", show_default=True)
@click.password_option("--password", help="At least 10 characters.")
def create_admin(login: str, display_name: str, password: str) -> None:
    """Create an admin account."""
    from marketplace.demo import run_create_admin  # noqa: PLC0415

    with backing_services(need_redis=False) as backing:
        settings = load_settings(backing.env)
        asyncio.run(run_create_admin(settings, login=login, password=password, name=display_name))
        click.echo(f"admin {login} created")


@main.command()
def seed() -> None:
    """Load the demo data into the configured database (idempotent)."""
    from marketplace.demo import load_demo_data  # noqa: PLC0415
    from marketplace.schema import upgrade_to_head  # noqa: PLC0415

    with backing_services(need_redis=False) as backing:
        settings = load_settings(backing.env)
        upgrade_to_head(settings.database.url)
        report = asyncio.run(load_demo_data(settings))
        click.echo(report.render())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers/--no-workers", default=True, help="Also run a Celery worker and beat.")
def demo(host: str, port: int, workers: bool) -> None:
    """Run the whole service with demo data; embedded PostgreSQL/Redis unless configured."""
    from marketplace.demo import load_demo_data  # noqa: PLC0415
    from marketplace.schema import upgrade_to_head  # noqa: PLC0415

    started = time.monotonic()
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with backing_services(need_redis=True) as backing:
            settings = load_settings(backing.env)
            upgrade_to_head(settings.database.url)
            report = asyncio.run(load_demo_data(settings))
            env = backing.env
            var_dir = var_dir_from(env)
            children.append(
                spawn(
                    [sys.executable, "-m", "uvicorn", "marketplace.app:create_app", "--factory",
                     "--host", host, "--port", str(port), "--no-access-log"],
                    env,
                )
            )  # fmt: skip
            if workers:
                children.append(
                    spawn(
                        [sys.executable, "-m", "celery", "-A", "workers.app", "worker",
                         "--pool", "solo", "-Q", "marketplace", "-l", "INFO"],
                        env,
                    )
                )  # fmt: skip
                children.append(
                    spawn(
                        [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "-l", "INFO",
                         "--schedule", str((var_dir / "celerybeat-schedule").resolve())],
                        env,
                    )
                )  # fmt: skip
            base = f"http://{host}:{port}"
            if wait_ready(base, children, lambda: stopping):
                elapsed = time.monotonic() - started
                click.echo(banner(base, elapsed, report.render()))
            while not stopping and all(c.poll() is None for c in children):
                time.sleep(0.2)
            if not stopping:
                failed = [c.args for c in children if c.poll() is not None]
                click.echo(f"a process exited, stopping the demo: {failed}", err=True)
    except EmbeddedServiceError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        stop_children(children)
        for s, handler in previous.items():
            signal.signal(s, handler)
    click.echo("stopped")


def spawn(args: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    # preexec_fn runs only prctl(PR_SET_PDEATHSIG) in the child: safe despite PLW1509.
    return subprocess.Popen(  # noqa: S603 - argv built here from sys.executable
        args,
        env=dict(env),
        preexec_fn=die_with_parent,  # noqa: PLW1509
    )


def wait_ready(base: str, children: list[subprocess.Popen[bytes]], stopped: object) -> bool:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if callable(stopped) and stopped():
            return False
        if any(c.poll() is not None for c in children):
            return False
        try:
            with urllib.request.urlopen(base + "/ready", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM everyone, give them a few seconds together, then SIGKILL the stragglers."""
    for child in children:
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            child.wait(remaining)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def banner(base: str, elapsed: float, demo_logins: str) -> str:
    return "\n".join(
        [
            "",
            f"Marketplace is ready in {elapsed:.1f}s",
            f"  API:          {base}/api",
            f"  API docs:     {base}/schema  (Swagger: {base}/schema/swagger)",
            f"  Dashboard:    {base}/impact/dashboard  (officials; public: "
            f"{base}/impact/public/provinces/46)",
            f"  Health:       {base}/ready",
            f"  Metrics:      {base}/metrics",
            "",
            demo_logins,
            "",
            "Press Ctrl-C to stop.",
        ]
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
