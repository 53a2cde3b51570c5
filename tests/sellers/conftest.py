"""Services under test on the test's rolled-back transaction, and callers of each role."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.sellers.consents import ConsentService
from marketplace.sellers.cooperatives import CooperativeService
from marketplace.sellers.service import SellersService
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork
from tests.accounts.factories import auth_headers, create_user
from tests.sellers.factories import HUONG_TRA, Caller, MakeCaller


@pytest.fixture
def caller(session: AsyncSession) -> MakeCaller:
    """`await caller(Role.OFFICIAL)`: officials default to the commune of Phường Hương Trà;
    `province=` makes a province official, `commune=` another commune's."""

    async def make(
        role: Role, *, commune: str | None = None, province: str | None = None
    ) -> Caller:
        level = code = None
        if role is Role.OFFICIAL:
            if province is not None:
                level, code = JurisdictionLevel.PROVINCE, province
            else:
                level, code = JurisdictionLevel.COMMUNE, commune or HUONG_TRA
        user = await create_user(
            session, role=role, jurisdiction_level=level, jurisdiction_code=code
        )
        return Caller(user=user, headers=await auth_headers(session, user))

    return make


@pytest.fixture
def sellers(session: AsyncSession, uow: UnitOfWork, settings: Settings) -> SellersService:
    """Depends on `session` so the factories' session closes after the unit of work:
    both take savepoints on the test's connection, and must release them in order."""
    return SellersService(uow, settings)


@pytest.fixture
def consents(session: AsyncSession, uow: UnitOfWork, settings: Settings) -> ConsentService:
    """Depends on `session` so the factories' session closes after the unit of work:
    both take savepoints on the test's connection, and must release them in order."""
    return ConsentService(uow, settings)


@pytest.fixture
def cooperatives(session: AsyncSession, uow: UnitOfWork, settings: Settings) -> CooperativeService:
    """Depends on `session` so the factories' session closes after the unit of work:
    both take savepoints on the test's connection, and must release them in order."""
    return CooperativeService(uow, settings)
