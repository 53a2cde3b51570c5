"""Unique rules hold in the database too: a request that loses a race past the service's
check gets the same clean conflict, and the transaction stays usable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import Role
from marketplace.sellers.errors import ActiveConsentExists, DuplicateNationalId
from marketplace.sellers.models import HelperConsent, Household
from marketplace.sellers.repository import ConsentRepository, HouseholdRepository
from tests.accounts.factories import create_user
from tests.sellers.factories import create_household, grant_consent


async def test_a_second_household_with_the_same_id_hash_is_a_duplicate_and_not_written(
    session: AsyncSession,
) -> None:
    first = await create_household(session)
    copy = Household(
        head_name="Nguyễn Văn Thành",
        members_count=4,
        commune_code=first.commune_code,
        province_code=first.province_code,
        phone="0905123409",
        national_id_hash=first.national_id_hash,
        national_id_encrypted=first.national_id_encrypted,
    )

    with pytest.raises(DuplicateNationalId):
        await HouseholdRepository(session).add(copy)

    assert await session.scalar(select(func.count()).select_from(Household)) == 1


async def test_a_second_active_consent_for_one_helper_is_refused_by_the_database(
    session: AsyncSession,
) -> None:
    household = await create_household(session)
    helper = await create_user(session, role=Role.HELPER)
    await grant_consent(session, household, helper, revoked_at=datetime(2025, 1, 1, tzinfo=UTC))
    await grant_consent(session, household, helper)
    racing = HelperConsent(
        household_id=household.id,
        helper_user_id=helper.id,
        scopes=["manage_products"],
        granted_at=datetime.now(UTC),
        evidence="Biên bản số 9",
    )

    with pytest.raises(ActiveConsentExists):
        await ConsentRepository(session).add(racing)

    count = await session.scalar(select(func.count()).select_from(HelperConsent))
    assert count == 2  # one revoked, one active: history is allowed, two active are not
