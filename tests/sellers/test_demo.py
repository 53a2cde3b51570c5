"""The demo's households, cooperative, farmer link and helper consent, loaded idempotently."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.sellers.demo import DEMO_HOUSEHOLDS, load_demo_sellers
from marketplace.sellers.models import (
    ConsentScope,
    HelperConsent,
    Household,
    HouseholdStatusEntry,
    PovertyStatus,
)
from marketplace.sellers.service import SellersService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import create_user
from tests.sellers.factories import CAN_THO, HUONG_TRA, identity


async def demo_accounts(session: AsyncSession) -> dict[str, uuid.UUID]:
    specs: dict[str, tuple[Role, JurisdictionLevel | None, str | None]] = {
        "admin@demo.vn": (Role.ADMIN, None, None),
        "nongdan@demo.vn": (Role.FARMER, None, None),
        "htx@demo.vn": (Role.COOPERATIVE_MANAGER, None, None),
        "hotro@demo.vn": (Role.HELPER, None, None),
        "canbo.xa@demo.vn": (Role.OFFICIAL, JurisdictionLevel.COMMUNE, HUONG_TRA),
        "canbo.tinh@demo.vn": (Role.OFFICIAL, JurisdictionLevel.PROVINCE, CAN_THO),
    }
    ids = {}
    for login, (role, level, code) in specs.items():
        user = await create_user(
            session, role=role, login=login, jurisdiction_level=level, jurisdiction_code=code
        )
        ids[login] = user.id
    return ids


async def test_the_demo_loads_households_with_histories_a_cooperative_and_links(
    session: AsyncSession, uow: UnitOfWork, settings: Settings, sellers: SellersService
) -> None:
    accounts = await demo_accounts(session)

    report = await load_demo_sellers(uow, settings, accounts)

    assert report.households_created == len(DEMO_HOUSEHOLDS)
    assert report.cooperative_created
    escaped = report.households["escaped_2024"]
    standing = await sellers.standing_on(escaped, date(2026, 11, 23))
    assert standing.status is PovertyStatus.NOT_POOR
    assert standing.newly_escaped
    assert standing.escaped_on == date(2024, 12, 16)
    farmer_household = await sellers.household_of_farmer(accounts["nongdan@demo.vn"])
    assert farmer_household is not None
    assert farmer_household.id == escaped
    assert report.cooperative_id is not None
    members = await sellers.active_members(report.cooperative_id, date(2026, 11, 23))
    assert len(members) == 3
    assert await sellers.is_manager(accounts["htx@demo.vn"], report.cooperative_id)
    helper = await create_user(session, role=Role.HELPER)
    assert not await sellers.can_manage_household(identity(helper), escaped)
    consent = await session.scalar(select(HelperConsent))
    assert consent is not None
    assert consent.helper_user_id == accounts["hotro@demo.vn"]
    assert ConsentScope.MANAGE_PRODUCTS.value in consent.scopes
    statuses = await sellers.statuses_on(list(report.households.values()), date(2026, 11, 23))
    assert set(statuses.values()) >= {
        PovertyStatus.POOR,
        PovertyStatus.NEAR_POOR,
        PovertyStatus.NOT_POOR,
    }


async def test_loading_the_demo_twice_creates_nothing_new(
    session: AsyncSession, uow: UnitOfWork, settings: Settings
) -> None:
    accounts = await demo_accounts(session)
    first = await load_demo_sellers(uow, settings, accounts)
    counts = [
        await session.scalar(select(func.count()).select_from(table))
        for table in (Household, HouseholdStatusEntry, HelperConsent)
    ]

    second = await load_demo_sellers(uow, settings, accounts)

    assert second.households_created == 0
    assert not second.cooperative_created
    assert second.households == first.households
    assert second.cooperative_id == first.cooperative_id
    assert [
        await session.scalar(select(func.count()).select_from(table))
        for table in (Household, HouseholdStatusEntry, HelperConsent)
    ] == counts
