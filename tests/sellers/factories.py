"""Typed factories for households, their reviews and consents, and cooperatives.

    household = await create_household(session, status=PovertyStatus.POOR)
    coop = await create_cooperative(session, managers=[manager], members=[household])
    consent = await grant_consent(session, household, helper)

Rows are inserted directly (no HTTP, no geo service) with realistic defaults: households of
Phường Hương Trà (TP. Huế) growing cam and bưởi, reviewed under the 07/2021 standard. The
national ID is hashed and encrypted with the same keys as the `settings` fixture, so the
services find and decrypt what a factory made.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import count

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import User
from marketplace.geo.models import ADMIN_VERSION, Commune
from marketplace.sellers.models import (
    ConsentScope,
    Cooperative,
    CooperativeManager,
    CooperativeMember,
    HelperConsent,
    Household,
    HouseholdStatusEntry,
    PovertyStatus,
)
from marketplace.sellers.pii import encrypt_national_id, national_id_hash
from marketplace.settings import SecuritySettings

PII_KEYS = SecuritySettings(
    pii_hmac_key="test-pii-hmac-key-" + "y" * 32,
    pii_encryption_key="ZmFrZS1rZXktZm9yLXRlc3RzLW9ubHktMzJieXRlcyE=",
)
"""The PII keys of the `settings` fixture (a test checks they stay equal)."""

HUE = "46"
HUONG_TRA = "19996"  # Phường Hương Trà, TP. Huế (urban line)
HUONG_THUY = "19975"  # Phường Hương Thủy, TP. Huế
CAN_THO = "92"
PHONG_DIEN = "31299"  # Xã Phong Điền, TP. Cần Thơ (rural line)
THOI_LAI = "31258"  # Xã Thới Lai, TP. Cần Thơ
NINH_KIEU = "31135"  # Phường Ninh Kiều, TP. Cần Thơ

STANDARD_07_2021 = "07/2021/ND-CP"
DEFAULT_REVIEW_DATE = date(2025, 12, 15)
"""Annual reviews (rà soát) close in December."""

HEAD_NAMES = (
    "Nguyễn Văn Thành",
    "Trần Thị Hoa",
    "Lê Văn Phước",
    "Hoàng Thị Sen",
    "Phan Văn Lộc",
    "Huỳnh Thị Mận",
    "Võ Văn Tư",
    "Ngô Thị Bưởi",
    "Đoàn Văn Cam",
    "Trương Thị Lài",
)
VILLAGES = {
    HUONG_TRA: ("Tổ dân phố Xuân Tháp", "Tổ dân phố Long Khê", "Tổ dân phố Bồn Phổ"),
    PHONG_DIEN: ("Ấp Nhơn Lộc 1", "Ấp Nhơn Lộc 2", "Ấp Tân Lợi"),
    THOI_LAI: ("Ấp Thới Phong", "Ấp Thới Hòa"),
}
AUTHORITIES = {
    HUONG_TRA: "UBND Phường Hương Trà",
    PHONG_DIEN: "UBND Xã Phong Điền",
    THOI_LAI: "UBND Xã Thới Lai",
}
CCCD_PROVINCE_PREFIX = {HUE: "046", CAN_THO: "092"}

_sequence = count(1)
_rng = random.Random()


def unique_national_id(province_code: str = HUE) -> str:
    """A 12-digit CCCD shaped like a real one: province of birth, century/sex, birth year."""
    prefix = CCCD_PROVINCE_PREFIX.get(province_code, "0" + province_code.zfill(2))
    century_sex = _rng.choice("01")
    year = f"{_rng.randint(55, 99):02d}"
    serial = f"{next(_sequence) % 1000:03d}{_rng.randint(0, 999):03d}"
    return prefix + century_sex + year + serial


def unique_phone() -> str:
    n = next(_sequence)
    return f"09{_rng.choice('01345')}{n % 100000:05d}{_rng.randint(0, 99):02d}"


async def province_of(session: AsyncSession, commune_code: str) -> str:
    province = await session.scalar(
        select(Commune.province_code).where(
            Commune.admin_version == ADMIN_VERSION, Commune.code == commune_code
        )
    )
    if province is None:
        raise ValueError(f"no commune {commune_code!r} in the geo tables")
    return province


async def create_household(
    session: AsyncSession,
    *,
    status: PovertyStatus | None = PovertyStatus.POOR,
    review_date: date = DEFAULT_REVIEW_DATE,
    commune_code: str = HUONG_TRA,
    head_name: str | None = None,
    members_count: int = 4,
    village: str | None = None,
    phone: str | None = None,
    national_id: str | None = None,
    farmer: User | None = None,
    created_by: User | None = None,
    bank_bin: str | None = "970405",
    bank_account_number: str | None = None,
) -> Household:
    """A household of Phường Hương Trà with one review (`status` on `review_date`, under
    the 07/2021 standard); `status=None` records no review."""
    n = next(_sequence)
    province_code = await province_of(session, commune_code)
    clear_id = national_id or unique_national_id(province_code)
    name = head_name or HEAD_NAMES[n % len(HEAD_NAMES)]
    household = Household(
        head_name=name,
        members_count=members_count,
        commune_code=commune_code,
        province_code=province_code,
        admin_version=ADMIN_VERSION,
        village=village if village is not None else _village(commune_code, n),
        phone=phone or unique_phone(),
        national_id_hash=national_id_hash(PII_KEYS.pii_hmac_key, clear_id),
        national_id_encrypted=encrypt_national_id(PII_KEYS.pii_encryption_key, clear_id),
        bank_bin=bank_bin,
        bank_account_number=bank_account_number
        or (f"{_rng.randint(10**11, 10**12 - 1)}" if bank_bin else None),
        bank_account_name=name.upper() if bank_bin else None,
        farmer_user_id=farmer.id if farmer else None,
        created_by_user_id=created_by.id if created_by else None,
    )
    session.add(household)
    await session.flush()
    if status is not None:
        await add_review(session, household, status=status, review_date=review_date)
    return household


def _village(commune_code: str, n: int) -> str:
    choices = VILLAGES.get(commune_code, ("Thôn 1", "Thôn 2"))
    return choices[n % len(choices)]


async def add_review(
    session: AsyncSession,
    household: Household,
    *,
    status: PovertyStatus,
    review_date: date = DEFAULT_REVIEW_DATE,
    standard_code: str = STANDARD_07_2021,
    recorded_by: User | None = None,
    decision_number: str | None = None,
    income_per_person_month: int | None = None,
    deprived_indicators: int | None = None,
    created_at: datetime | None = None,
) -> HouseholdStatusEntry:
    entry = HouseholdStatusEntry(
        household_id=household.id,
        status=status.value,
        review_date=review_date,
        standard_code=standard_code,
        decision_number=decision_number or f"{next(_sequence) % 9000 + 100}/QĐ-UBND",
        deciding_authority=AUTHORITIES.get(household.commune_code, "UBND xã"),
        recorded_by_user_id=recorded_by.id if recorded_by else None,
        income_per_person_month=income_per_person_month,
        deprived_indicators=deprived_indicators,
    )
    if created_at is not None:
        entry.created_at = created_at
    session.add(entry)
    await session.flush()
    return entry


async def grant_consent(
    session: AsyncSession,
    household: Household,
    helper: User,
    *,
    scopes: Sequence[ConsentScope] = (
        ConsentScope.MANAGE_PRODUCTS,
        ConsentScope.MANAGE_PROFILE,
    ),
    recorded_by: User | None = None,
    revoked_at: datetime | None = None,
    evidence: str = "Biên bản đồng ý số 12/BB ký tại UBND phường",
) -> HelperConsent:
    consent = HelperConsent(
        household_id=household.id,
        helper_user_id=helper.id,
        scopes=[scope.value for scope in scopes],
        granted_at=datetime.now(UTC),
        recorded_by_user_id=recorded_by.id if recorded_by else None,
        evidence=evidence,
        revoked_at=revoked_at,
    )
    session.add(consent)
    await session.flush()
    return consent


async def create_cooperative(
    session: AsyncSession,
    *,
    name: str | None = None,
    commune_code: str = HUONG_TRA,
    managers: Sequence[User] = (),
    members: Sequence[Household] = (),
    joined_on: date = date(2023, 3, 1),
    description: str = "Hợp tác xã trồng cam, bưởi da xanh và thanh trà theo VietGAP.",
) -> Cooperative:
    """A cooperative (HTX) of Phường Hương Trà; `members` join on `joined_on`."""
    n = next(_sequence)
    cooperative = Cooperative(
        name=name or f"HTX Nông nghiệp Hương Trà {n}",
        commune_code=commune_code,
        province_code=await province_of(session, commune_code),
        admin_version=ADMIN_VERSION,
        registration_number=f"3301{n:06d}",
        description=description,
    )
    session.add(cooperative)
    await session.flush()
    for manager in managers:
        session.add(CooperativeManager(cooperative_id=cooperative.id, user_id=manager.id))
    await session.flush()
    for household in members:
        await add_member(session, cooperative, household, joined_on=joined_on)
    return cooperative


async def add_member(
    session: AsyncSession,
    cooperative: Cooperative,
    household: Household,
    *,
    joined_on: date = date(2023, 3, 1),
    left_on: date | None = None,
) -> CooperativeMember:
    member = CooperativeMember(
        cooperative_id=cooperative.id,
        household_id=household.id,
        joined_on=joined_on,
        left_on=left_on,
    )
    session.add(member)
    await session.flush()
    return member


def identity(user: User) -> AuthenticatedUser:
    """The caller the authentication middleware would make of this user, for calling
    services directly (`await service.get_household(identity(official), ...)`)."""
    return AuthenticatedUser(
        id=user.id,
        role=user.role,
        display_name=user.display_name,
        jurisdiction_level=user.jurisdiction_level,
        jurisdiction_code=user.jurisdiction_code,
        token_id=user.id,
    )


@dataclass(frozen=True)
class Caller:
    """A user of some role with a bearer token, for calling the API and the services."""

    user: User
    headers: dict[str, str]

    @property
    def me(self) -> AuthenticatedUser:
        return identity(self.user)


MakeCaller = Callable[..., Awaitable[Caller]]
"""The `caller` fixture: `await caller(Role.OFFICIAL, province=CAN_THO)`."""
