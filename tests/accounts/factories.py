"""Typed factories for accounts and their bearer tokens, with realistic Vietnamese names.

    user = await create_user(session, role=Role.FARMER)
    headers = await auth_headers(session, user)
    response = await client.get("/api/auth/me", headers=headers)

Users are inserted directly (cheap argon2 costs, no geo lookup), tokens are issued by the
real `AccountService` so they are exactly what a login returns.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import datetime
from itertools import count

import httpx
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from marketplace.accounts.models import JurisdictionLevel, Role, User
from marketplace.accounts.service import AccountService, IssuedToken
from marketplace.db import utcnow
from marketplace.settings import SecuritySettings, Settings
from marketplace.unit_of_work import UnitOfWork
from tests.support.jobs import RecordingSender

ClientAt = Callable[[str], httpx.AsyncClient]
"""Makes an httpx client calling the app from a given address (fixture `client_at`)."""

DEFAULT_PASSWORD = "mat-khau-vuon-cam-2026"
CAN_THO = "92"
PHUONG_NINH_KIEU = "31135"

VIETNAMESE_NAMES = (
    "Nguyễn Văn An",
    "Trần Thị Bích",
    "Lê Văn Cường",
    "Phạm Thị Dung",
    "Hoàng Văn Em",
    "Huỳnh Thị Phương",
    "Võ Minh Giang",
    "Đặng Thị Hạnh",
    "Bùi Quốc Khánh",
    "Đỗ Thị Lan",
)

# Cheap argon2 for speed; a hash made with other costs still verifies (and is upgraded).
_HASHER = PasswordHasher(time_cost=1, memory_cost=1024)
_HASHES: dict[str, str] = {}
FACTORY_SETTINGS = Settings(security=SecuritySettings(argon2_time_cost=1, argon2_memory_cost=1024))
_sequence = count(1)


def password_hash(password: str = DEFAULT_PASSWORD) -> str:
    if password not in _HASHES:
        _HASHES[password] = _HASHER.hash(password)
    return _HASHES[password]


def unique_login() -> str:
    """Unique across concurrent test runs, which share Redis (login rate-limit keys)."""
    return f"nong.dan.{uuid.uuid4().hex[:12]}@example.vn"


def unique_ip() -> str:
    """A client address no other test (or concurrent run) uses, for rate-limit tests."""
    a, b, c = secrets.token_bytes(3)
    return f"10.{a}.{b}.{c or 1}"


async def create_user(
    session: AsyncSession,
    *,
    role: Role = Role.BUYER,
    login: str | None = None,
    password: str = DEFAULT_PASSWORD,
    display_name: str | None = None,
    phone: str | None = None,
    is_active: bool = True,
    jurisdiction_level: JurisdictionLevel | None = None,
    jurisdiction_code: str | None = None,
) -> User:
    """An account of `role`; an official defaults to the province of Cần Thơ (92)."""
    n = next(_sequence)
    if role is Role.OFFICIAL and jurisdiction_level is None:
        jurisdiction_level = JurisdictionLevel.PROVINCE
        jurisdiction_code = jurisdiction_code or CAN_THO
    user = User(
        login=(login or unique_login()).lower(),
        display_name=display_name or VIETNAMESE_NAMES[n % len(VIETNAMESE_NAMES)],
        phone=phone,
        role=role,
        password_hash=password_hash(password),
        is_active=is_active,
        jurisdiction_level=jurisdiction_level,
        jurisdiction_code=jurisdiction_code,
        admin_version="2025-07" if jurisdiction_level is not None else None,
    )
    session.add(user)
    await session.flush()
    return user


async def issue_token(
    session: AsyncSession, user: User, *, now: datetime | None = None
) -> IssuedToken:
    """A token issued by the service, as a login would; `now` in the past makes one that
    has already expired (tokens live the default `token_ttl_seconds`, 7 days)."""
    bind = session.bind
    sessionmaker = async_sessionmaker(
        bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    uow = UnitOfWork(sessionmaker, RecordingSender())
    service = AccountService(uow, FACTORY_SETTINGS, redis=None, clock=lambda: now or utcnow())
    issued = await service.issue_token(user, ip="127.0.0.1")
    # Releases the savepoint only: the test's outer transaction still rolls everything back.
    await uow.commit()
    await uow.close()
    return issued


async def auth_headers(
    session: AsyncSession, user: User, *, now: datetime | None = None
) -> dict[str, str]:
    issued = await issue_token(session, user, now=now)
    return {"Authorization": f"Bearer {issued.token}"}
