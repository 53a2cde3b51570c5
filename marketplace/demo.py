"""Demo data for the default run: realistic, idempotent, loaded once.

Each domain contributes through its own service; nothing here writes SQL. Passwords are
generated on the first run and kept in var/demo-credentials.json so every later run prints
the same logins without shipping a known password.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from marketplace.accounts.models import Role
from marketplace.accounts.service import AccountService
from marketplace.catalog.certificates import VIETNAM
from marketplace.catalog.demo import load_demo_catalog
from marketplace.db import create_engine, create_sessionmaker
from marketplace.jobs import NullSender
from marketplace.livestreams.demo import DemoLivestreamReport, load_demo_livestreams
from marketplace.sellers.demo import load_demo_sellers
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

CAN_THO = "92"
NINH_KIEU = "31135"  # Phường Ninh Kiều, TP. Cần Thơ (2025-07 code)
HUE = "46"
HUONG_TRA = "19996"  # Phường Hương Trà, TP. Huế (2025-07 code)


@dataclass(frozen=True)
class DemoAccount:
    role: Role
    login: str
    name: str
    jurisdiction_level: str | None = None
    jurisdiction_code: str | None = None


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount(Role.ADMIN, "admin@demo.vn", "Quản trị viên"),
    DemoAccount(Role.FARMER, "nongdan@demo.vn", "Nguyễn Văn Hùng"),
    DemoAccount(Role.COOPERATIVE_MANAGER, "htx@demo.vn", "Lê Thị Mai"),
    DemoAccount(Role.HOST, "host@demo.vn", "Trần Minh Tâm"),
    DemoAccount(Role.BUYER, "khach@demo.vn", "Phạm Thu Trang"),
    DemoAccount(Role.HELPER, "hotro@demo.vn", "Võ Văn Lợi"),
    DemoAccount(Role.OFFICIAL, "canbo.xa@demo.vn", "Huỳnh Văn Phúc", "commune", HUONG_TRA),
    DemoAccount(Role.OFFICIAL, "canbo.tinh@demo.vn", "Đặng Thị Lan", "province", CAN_THO),
)


@dataclass
class DemoReport:
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    created: int = 0
    trace_codes: dict[str, str] = field(default_factory=dict)
    livestream: DemoLivestreamReport | None = None

    def render(self) -> str:
        width = max((len(login) for _, login, _ in self.logins), default=10)
        lines = ["Demo logins (role, login, password):"]
        lines += [f"  {role:<20} {login:<{width}}  {pw}" for role, login, pw in self.logins]
        if self.trace_codes:
            lines.append("Trace codes (open /trace/<code>):")
            lines += [f"  {code}  {name}" for name, code in self.trace_codes.items()]
        if self.livestream is not None:
            live = self.livestream
            start = live.scheduled_start_at.astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M")
            lines.append(f"Livestream: {live.title}, {start} (giờ Việt Nam), id {live.session_id}")
        return "\n".join(lines)


def demo_passwords(var_dir: Path) -> dict[str, str]:
    path = var_dir / "demo-credentials.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
    else:
        stored = {}
    changed = False
    for account in DEMO_ACCOUNTS:
        if account.login not in stored:
            stored[account.login] = "demo-" + secrets.token_urlsafe(9)
            changed = True
    if changed:
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored


async def load_demo_data(settings: Settings) -> DemoReport:
    """Create what is missing; existing rows are left as they are (safe to run every start)."""
    passwords = demo_passwords(settings.var_dir)
    engine = create_engine(settings.database)
    try:
        async with UnitOfWork(create_sessionmaker(engine), NullSender()) as uow:
            report = await seed_demo(uow, settings, passwords)
            await uow.commit()
    finally:
        await engine.dispose()
    return report


async def seed_demo(
    uow: UnitOfWork, settings: Settings, passwords: Mapping[str, str]
) -> DemoReport:
    """Accounts, sellers, catalog and livestream in one unit of work, each domain through its
    own services; `passwords` holds one per demo login (used only for a new account). The
    caller commits."""
    accounts = AccountService.for_cli(uow, settings)
    report = DemoReport()
    user_ids: dict[str, uuid.UUID] = {}
    for account in DEMO_ACCOUNTS:
        user = await accounts.ensure_demo_user(
            login=account.login,
            password=passwords[account.login],
            display_name=account.name,
            role=account.role,
            jurisdiction_level=account.jurisdiction_level,
            jurisdiction_code=account.jurisdiction_code,
        )
        user_ids[account.login] = user.id
        report.logins.append((account.role.value, account.login, passwords[account.login]))
    await uow.session.flush()
    sellers = await load_demo_sellers(uow, settings, user_ids)
    catalog = await load_demo_catalog(uow, settings, sellers, user_ids)
    livestream = await load_demo_livestreams(uow, settings, sellers, catalog, user_ids)
    report.created += sellers.households_created + catalog.products_created
    report.created += int(livestream.created)
    report.trace_codes = dict(catalog.trace_codes)
    report.livestream = livestream
    return report


async def run_create_admin(settings: Settings, *, login: str, password: str, name: str) -> None:
    engine = create_engine(settings.database)
    try:
        async with UnitOfWork(create_sessionmaker(engine), NullSender()) as uow:
            await AccountService.for_cli(uow, settings).create_admin(
                login=login, password=password, display_name=name
            )
            await uow.commit()
    finally:
        await engine.dispose()
