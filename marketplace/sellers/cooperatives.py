"""Cooperatives (HTX): registration, manager accounts and member households over time.

A membership is a period: joined on a day, left on a later (or the same) day, the day of
leaving being the first day the household is no longer a member. Periods of one household
in one cooperative never overlap, so "members on day D" is unambiguous for splitting a
lot's revenue. Removing a member records the day it left; history is never deleted.
"""

from __future__ import annotations

import uuid
from datetime import date

import structlog

from marketplace.accounts.guards import ensure_jurisdiction
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.db import utcnow
from marketplace.errors import PermissionDenied, ValidationFailed
from marketplace.geo.service import GeoService
from marketplace.resources import Clock
from marketplace.sellers.errors import (
    AlreadyMember,
    CooperativeNotFound,
    MembershipEnded,
    MembershipNotFound,
)
from marketplace.sellers.models import Cooperative, CooperativeMember, Household
from marketplace.sellers.pii import mask_phone
from marketplace.sellers.policy import check_account_role, in_jurisdiction, vietnam_today
from marketplace.sellers.repository import CooperativeRepository, HouseholdRepository
from marketplace.sellers.schemas import (
    CooperativeCreate,
    CooperativeRead,
    ManagerRead,
    MemberCreate,
    MemberRead,
    cooperative_read,
)
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

MAX_PAGE = 200


class CooperativeService:
    def __init__(self, uow: UnitOfWork, settings: Settings, clock: Clock = utcnow) -> None:
        self._uow = uow
        self._settings = settings
        self._clock = clock
        self._cooperatives = CooperativeRepository(uow.session)
        self._households = HouseholdRepository(uow.session)
        self._geo = GeoService(uow)

    async def create_cooperative(
        self, user: AuthenticatedUser, data: CooperativeCreate
    ) -> CooperativeRead:
        """Admins, or officials of the cooperative's commune or province."""
        commune = await self._geo.require_commune(data.commune_code, field="commune_code")
        ensure_jurisdiction(user, commune_code=commune.code, province_code=commune.province_code)
        cooperative = await self._cooperatives.add(
            Cooperative(
                name=data.name.strip(),
                commune_code=commune.code,
                province_code=commune.province_code,
                admin_version=commune.admin_version,
                registration_number=data.registration_number,
                description=data.description.strip(),
            )
        )
        log.info("cooperative_created", cooperative_id=str(cooperative.id), by_user_id=str(user.id))
        return cooperative_read(cooperative)

    async def get_cooperative(self, cooperative_id: uuid.UUID) -> CooperativeRead:
        return cooperative_read(await self._cooperative(cooperative_id))

    async def find_by_name(self, name: str) -> CooperativeRead | None:
        cooperative = await self._cooperatives.get_by_name(name)
        return cooperative_read(cooperative) if cooperative else None

    async def list_cooperatives(
        self, *, province_code: str | None, commune_code: str | None, limit: int
    ) -> list[CooperativeRead]:
        rows = await self._cooperatives.list_cooperatives(
            province_code=province_code.strip().zfill(2) if province_code else None,
            commune_code=commune_code.strip().zfill(5) if commune_code else None,
            limit=max(1, min(limit, MAX_PAGE)),
        )
        return [cooperative_read(c) for c in rows]

    async def my_cooperatives(self, user: AuthenticatedUser) -> list[CooperativeRead]:
        return [cooperative_read(c) for c in await self._cooperatives.managed_by(user.id)]

    async def add_manager(self, cooperative_id: uuid.UUID, user_id: uuid.UUID) -> ManagerRead:
        """Admins make a cooperative-manager account a manager; adding twice is a no-op."""
        cooperative = await self._cooperative(cooperative_id)
        await check_account_role(
            self._uow,
            self._settings,
            self._clock,
            user_id,
            Role.COOPERATIVE_MANAGER,
            field="user_id",
        )
        if await self._cooperatives.add_manager(cooperative.id, user_id):
            log.info(
                "cooperative_manager_added",
                cooperative_id=str(cooperative.id),
                user_id=str(user_id),
            )
        return ManagerRead(cooperative_id=cooperative.id, user_id=user_id)

    async def remove_manager(self, cooperative_id: uuid.UUID, user_id: uuid.UUID) -> None:
        cooperative = await self._cooperative(cooperative_id)
        if await self._cooperatives.remove_manager(cooperative.id, user_id):
            log.info(
                "cooperative_manager_removed",
                cooperative_id=str(cooperative.id),
                user_id=str(user_id),
            )

    async def list_managers(self, cooperative_id: uuid.UUID) -> list[ManagerRead]:
        cooperative = await self._cooperative(cooperative_id)
        return [
            ManagerRead(cooperative_id=cooperative.id, user_id=user_id)
            for user_id in await self._cooperatives.manager_ids(cooperative.id)
        ]

    async def add_member(
        self, user: AuthenticatedUser, cooperative_id: uuid.UUID, data: MemberCreate
    ) -> MemberRead:
        """A manager of the cooperative or an admin adds a household for a period that
        overlaps none of its other periods in this cooperative."""
        await self._require_manager(user, cooperative_id)
        household = await self._households.get(data.household_id)
        if household is None:
            raise ValidationFailed.for_field("household_id", "no such household")
        if data.left_on is not None and data.left_on < data.joined_on:
            raise ValidationFailed.for_field("left_on", "must not be before joined_on")
        # The cooperative's row lock serialises membership changes: two concurrent
        # additions of one household cannot both pass the overlap check.
        await self._cooperatives.lock(cooperative_id)
        if await self._cooperatives.overlapping_membership(
            cooperative_id, household.id, data.joined_on, data.left_on
        ):
            raise AlreadyMember()
        member = await self._cooperatives.add_member(
            CooperativeMember(
                cooperative_id=cooperative_id,
                household_id=household.id,
                joined_on=data.joined_on,
                left_on=data.left_on,
            )
        )
        log.info(
            "cooperative_member_added",
            cooperative_id=str(cooperative_id),
            household_id=str(household.id),
            by_user_id=str(user.id),
        )
        return await self._member_read(user, member, household)

    async def end_membership(
        self,
        user: AuthenticatedUser,
        cooperative_id: uuid.UUID,
        member_id: uuid.UUID,
        left_on: date,
    ) -> MemberRead:
        await self._require_manager(user, cooperative_id)
        await self._cooperatives.lock(cooperative_id)
        member = await self._cooperatives.get_member(cooperative_id, member_id)
        if member is None:
            raise MembershipNotFound()
        if member.left_on is not None:
            raise MembershipEnded()
        if left_on < member.joined_on:
            raise ValidationFailed.for_field("left_on", "must not be before joined_on")
        member.left_on = left_on
        await self._cooperatives.flush()
        household = await self._households.get(member.household_id)
        if household is None:  # the foreign key cascades: a member always has its household
            raise MembershipNotFound()
        log.info(
            "cooperative_member_left",
            cooperative_id=str(cooperative_id),
            household_id=str(household.id),
            by_user_id=str(user.id),
        )
        return await self._member_read(user, member, household)

    async def list_members(
        self, user: AuthenticatedUser, cooperative_id: uuid.UUID, on: date | None
    ) -> list[MemberRead]:
        """Members on `on`, or every membership ever without it: for the cooperative's
        managers, admins and officials of the cooperative's commune or province."""
        cooperative = await self._cooperative(cooperative_id)
        if not (
            await self._manages(user, cooperative.id)
            or in_jurisdiction(user, cooperative.commune_code, cooperative.province_code)
        ):
            raise PermissionDenied("not your cooperative")
        rows = await self._cooperatives.members(cooperative.id, on)
        return [await self._member_read(user, member, household) for member, household in rows]

    async def _member_read(
        self, user: AuthenticatedUser, member: CooperativeMember, household: Household
    ) -> MemberRead:
        """The phone in full for officials of the household's jurisdiction and for the
        cooperative's managers while the household is a member; masked for the rest."""
        today = vietnam_today(self._clock())
        active_today = member.joined_on <= today and (
            member.left_on is None or member.left_on > today
        )
        full = in_jurisdiction(user, household.commune_code, household.province_code) or (
            user.role is Role.COOPERATIVE_MANAGER
            and active_today
            and await self._cooperatives.is_manager(user.id, member.cooperative_id)
        )
        return MemberRead(
            id=member.id,
            cooperative_id=member.cooperative_id,
            household_id=household.id,
            head_name=household.head_name,
            commune_code=household.commune_code,
            village=household.village,
            phone=household.phone if full else mask_phone(household.phone),
            phone_masked=not full,
            joined_on=member.joined_on,
            left_on=member.left_on,
        )

    async def _manages(self, user: AuthenticatedUser, cooperative_id: uuid.UUID) -> bool:
        if user.role is Role.ADMIN:
            return True
        return user.role is Role.COOPERATIVE_MANAGER and await self._cooperatives.is_manager(
            user.id, cooperative_id
        )

    async def _require_manager(self, user: AuthenticatedUser, cooperative_id: uuid.UUID) -> None:
        await self._cooperative(cooperative_id)
        if not await self._manages(user, cooperative_id):
            raise PermissionDenied("you do not manage this cooperative")

    async def _cooperative(self, cooperative_id: uuid.UUID) -> Cooperative:
        cooperative = await self._cooperatives.get(cooperative_id)
        if cooperative is None:
            raise CooperativeNotFound()
        return cooperative
