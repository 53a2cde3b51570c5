"""Every query of the sellers domain."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.sellers.errors import (
    ActiveConsentExists,
    DuplicateNationalId,
    FarmerAlreadyLinked,
)
from marketplace.sellers.models import (
    Cooperative,
    CooperativeManager,
    CooperativeMember,
    HelperAction,
    HelperConsent,
    Household,
    HouseholdStatusEntry,
    PovertyStatus,
)


def _raise_known_conflict(exc: IntegrityError) -> None:
    """Translate the unique constraints a client can run into; others stay bugs."""
    message = str(exc.orig)
    if "uq_households_national_id_hash" in message:
        raise DuplicateNationalId() from None
    if "uq_households_farmer_user_id" in message:
        raise FarmerAlreadyLinked() from None
    if "uq_helper_consents_active_pair" in message:
        raise ActiveConsentExists() from None


def active_membership(on: date) -> ColumnElement[bool]:
    """A member on `on`: joined on or before it and not yet left (the day of leaving is
    the first day the household is no longer a member)."""
    return and_(
        CooperativeMember.joined_on <= on,
        or_(CooperativeMember.left_on.is_(None), CooperativeMember.left_on > on),
    )


def latest_status_query(
    on: date, household_ids: Iterable[uuid.UUID] | None = None
) -> Select[uuid.UUID, str]:
    """The status of each household on `on`: its latest entry reviewed on or before that
    day; of several entries on one review day the last recorded wins (a correction)."""
    query = (
        select(HouseholdStatusEntry.household_id, HouseholdStatusEntry.status)
        .where(HouseholdStatusEntry.review_date <= on)
        .ext(distinct_on(HouseholdStatusEntry.household_id))
        .order_by(
            HouseholdStatusEntry.household_id,
            HouseholdStatusEntry.review_date.desc(),
            HouseholdStatusEntry.created_at.desc(),
            HouseholdStatusEntry.id.desc(),
        )
    )
    if household_ids is not None:
        query = query.where(HouseholdStatusEntry.household_id.in_(list(household_ids)))
    return query


class HouseholdRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, household_id: uuid.UUID) -> Household | None:
        return await self._session.get(Household, household_id)

    async def get_for_update(self, household_id: uuid.UUID) -> Household | None:
        result = await self._session.execute(
            select(Household).where(Household.id == household_id).with_for_update()
        )
        return result.scalar_one_or_none()

    async def get_by_farmer(self, farmer_user_id: uuid.UUID) -> Household | None:
        result = await self._session.execute(
            select(Household).where(Household.farmer_user_id == farmer_user_id)
        )
        return result.scalar_one_or_none()

    async def national_id_taken(
        self, national_id_hash: str, *, other_than: uuid.UUID | None = None
    ) -> bool:
        query = select(exists().where(Household.national_id_hash == national_id_hash))
        if other_than is not None:
            query = select(
                exists().where(
                    Household.national_id_hash == national_id_hash, Household.id != other_than
                )
            )
        return bool(await self._session.scalar(query))

    async def add(self, household: Household) -> Household:
        """Insert now inside a savepoint: a national ID registered by a concurrent request
        is a clean 409 here, and nothing of this household is left half-written."""
        try:
            async with self._session.begin_nested():
                self._session.add(household)
        except IntegrityError as exc:
            _raise_known_conflict(exc)
            raise
        return household

    async def flush_changes(self) -> None:
        """Flush an edited household inside a savepoint, translating unique conflicts."""
        try:
            async with self._session.begin_nested():
                await self._session.flush()
        except IntegrityError as exc:
            _raise_known_conflict(exc)
            raise

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        commune_code: str | None,
        province_code: str | None,
        status: PovertyStatus | None,
        on: date,
    ) -> Sequence[Household]:
        """One page in (created_at, id) order after a cursor: rows inserted meanwhile land
        at the end, so no row is skipped or repeated between pages."""
        query = select(Household)
        if commune_code is not None:
            query = query.where(Household.commune_code == commune_code)
        if province_code is not None:
            query = query.where(Household.province_code == province_code)
        if status is not None:
            latest = latest_status_query(on).subquery()
            query = query.join(latest, latest.c.household_id == Household.id).where(
                latest.c.status == status.value
            )
        if after is not None:
            query = query.where(tuple_(Household.created_at, Household.id) > tuple_(*after))
        result = await self._session.execute(
            query.order_by(Household.created_at, Household.id).limit(limit)
        )
        return result.scalars().all()

    async def find_by_national_id_hash(self, national_id_hash: str) -> Household | None:
        result = await self._session.execute(
            select(Household).where(Household.national_id_hash == national_id_hash)
        )
        return result.scalar_one_or_none()


class StatusRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, entry: HouseholdStatusEntry) -> HouseholdStatusEntry:
        self._session.add(entry)
        await self._session.flush()
        return entry

    async def history(
        self, household_id: uuid.UUID, *, until: date | None = None
    ) -> Sequence[HouseholdStatusEntry]:
        """Entries oldest first, in the order they take effect."""
        query = select(HouseholdStatusEntry).where(
            HouseholdStatusEntry.household_id == household_id
        )
        if until is not None:
            query = query.where(HouseholdStatusEntry.review_date <= until)
        result = await self._session.execute(
            query.order_by(
                HouseholdStatusEntry.review_date,
                HouseholdStatusEntry.created_at,
                HouseholdStatusEntry.id,
            )
        )
        return result.scalars().all()

    async def histories(
        self, household_ids: Sequence[uuid.UUID], *, until: date
    ) -> Sequence[HouseholdStatusEntry]:
        """Entries of several households up to a day, in one query, in effect order."""
        if not household_ids:
            return []
        result = await self._session.execute(
            select(HouseholdStatusEntry)
            .where(
                HouseholdStatusEntry.household_id.in_(household_ids),
                HouseholdStatusEntry.review_date <= until,
            )
            .order_by(
                HouseholdStatusEntry.household_id,
                HouseholdStatusEntry.review_date,
                HouseholdStatusEntry.created_at,
                HouseholdStatusEntry.id,
            )
        )
        return result.scalars().all()

    async def statuses_on(
        self, household_ids: Sequence[uuid.UUID], on: date
    ) -> dict[uuid.UUID, str]:
        if not household_ids:
            return {}
        result = await self._session.execute(latest_status_query(on, household_ids))
        return dict(result.all())


class ConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, consent: HelperConsent) -> HelperConsent:
        try:
            async with self._session.begin_nested():
                self._session.add(consent)
        except IntegrityError as exc:
            _raise_known_conflict(exc)
            raise
        return consent

    async def get(self, household_id: uuid.UUID, consent_id: uuid.UUID) -> HelperConsent | None:
        result = await self._session.execute(
            select(HelperConsent).where(
                HelperConsent.id == consent_id, HelperConsent.household_id == household_id
            )
        )
        return result.scalar_one_or_none()

    async def active(
        self, household_id: uuid.UUID, helper_user_id: uuid.UUID
    ) -> HelperConsent | None:
        result = await self._session.execute(
            select(HelperConsent).where(
                HelperConsent.household_id == household_id,
                HelperConsent.helper_user_id == helper_user_id,
                HelperConsent.revoked_at.is_(None),
            )
        )
        return result.scalar_one_or_none()

    async def list_for_household(
        self, household_id: uuid.UUID, *, helper_user_id: uuid.UUID | None = None
    ) -> Sequence[HelperConsent]:
        query = select(HelperConsent).where(HelperConsent.household_id == household_id)
        if helper_user_id is not None:
            query = query.where(HelperConsent.helper_user_id == helper_user_id)
        result = await self._session.execute(
            query.order_by(HelperConsent.granted_at, HelperConsent.id)
        )
        return result.scalars().all()

    async def households_helped(self, helper_user_id: uuid.UUID) -> Sequence[Household]:
        result = await self._session.execute(
            select(Household)
            .join(HelperConsent, HelperConsent.household_id == Household.id)
            .where(
                HelperConsent.helper_user_id == helper_user_id,
                HelperConsent.revoked_at.is_(None),
            )
            .order_by(Household.created_at, Household.id)
        )
        return result.scalars().all()

    async def revoke(self, consent_id: uuid.UUID, now: datetime) -> None:
        await self._session.execute(
            update(HelperConsent)
            .where(HelperConsent.id == consent_id, HelperConsent.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now)
        )

    async def add_action(self, action: HelperAction) -> HelperAction:
        self._session.add(action)
        await self._session.flush()
        return action

    async def actions(self, household_id: uuid.UUID, limit: int) -> Sequence[HelperAction]:
        result = await self._session.execute(
            select(HelperAction)
            .where(HelperAction.household_id == household_id)
            .order_by(HelperAction.created_at.desc(), HelperAction.id.desc())
            .limit(limit)
        )
        return result.scalars().all()


class CooperativeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, cooperative_id: uuid.UUID) -> Cooperative | None:
        return await self._session.get(Cooperative, cooperative_id)

    async def get_by_name(self, name: str) -> Cooperative | None:
        result = await self._session.execute(select(Cooperative).where(Cooperative.name == name))
        return result.scalars().first()

    async def add(self, cooperative: Cooperative) -> Cooperative:
        self._session.add(cooperative)
        await self._session.flush()
        return cooperative

    async def list_cooperatives(
        self, *, province_code: str | None, commune_code: str | None, limit: int
    ) -> Sequence[Cooperative]:
        query = select(Cooperative)
        if province_code is not None:
            query = query.where(Cooperative.province_code == province_code)
        if commune_code is not None:
            query = query.where(Cooperative.commune_code == commune_code)
        result = await self._session.execute(
            query.order_by(Cooperative.name, Cooperative.id).limit(limit)
        )
        return result.scalars().all()

    async def managed_by(self, user_id: uuid.UUID) -> Sequence[Cooperative]:
        result = await self._session.execute(
            select(Cooperative)
            .join(CooperativeManager, CooperativeManager.cooperative_id == Cooperative.id)
            .where(CooperativeManager.user_id == user_id)
            .order_by(Cooperative.name, Cooperative.id)
        )
        return result.scalars().all()

    async def is_manager(self, user_id: uuid.UUID, cooperative_id: uuid.UUID) -> bool:
        return bool(
            await self._session.scalar(
                select(
                    exists().where(
                        CooperativeManager.user_id == user_id,
                        CooperativeManager.cooperative_id == cooperative_id,
                    )
                )
            )
        )

    async def add_manager(self, cooperative_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """True when added, False when the user already managed it (idempotent)."""
        if await self.is_manager(user_id, cooperative_id):
            return False
        try:
            async with self._session.begin_nested():
                self._session.add(
                    CooperativeManager(cooperative_id=cooperative_id, user_id=user_id)
                )
        except IntegrityError:
            # A concurrent request added the same manager: the outcome is the same.
            return False
        return True

    async def remove_manager(self, cooperative_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        result = await self._session.execute(
            select(CooperativeManager).where(
                CooperativeManager.cooperative_id == cooperative_id,
                CooperativeManager.user_id == user_id,
            )
        )
        row = result.scalar_one_or_none()
        if row is None:
            return False
        await self._session.delete(row)
        await self._session.flush()
        return True

    async def manager_ids(self, cooperative_id: uuid.UUID) -> list[uuid.UUID]:
        result = await self._session.execute(
            select(CooperativeManager.user_id)
            .where(CooperativeManager.cooperative_id == cooperative_id)
            .order_by(CooperativeManager.created_at, CooperativeManager.user_id)
        )
        return list(result.scalars().all())

    async def manages_household(
        self, user_id: uuid.UUID, household_id: uuid.UUID, on: date
    ) -> bool:
        """The user manages a cooperative of which the household is a member on `on`."""
        return bool(
            await self._session.scalar(
                select(
                    exists()
                    .where(
                        CooperativeManager.user_id == user_id,
                        CooperativeMember.household_id == household_id,
                        active_membership(on),
                    )
                    .where(CooperativeManager.cooperative_id == CooperativeMember.cooperative_id)
                )
            )
        )

    async def lock(self, cooperative_id: uuid.UUID) -> Cooperative | None:
        """Serialises membership changes of one cooperative (overlap checks then insert)."""
        result = await self._session.execute(
            select(Cooperative).where(Cooperative.id == cooperative_id).with_for_update()
        )
        return result.scalar_one_or_none()

    async def overlapping_membership(
        self,
        cooperative_id: uuid.UUID,
        household_id: uuid.UUID,
        joined_on: date,
        left_on: date | None,
        *,
        other_than: uuid.UUID | None = None,
    ) -> bool:
        """Whether another membership of the pair overlaps [joined_on, left_on)."""
        conditions: list[ColumnElement[bool]] = [
            CooperativeMember.cooperative_id == cooperative_id,
            CooperativeMember.household_id == household_id,
            or_(CooperativeMember.left_on.is_(None), CooperativeMember.left_on > joined_on),
        ]
        if left_on is not None:
            conditions.append(CooperativeMember.joined_on < left_on)
        if other_than is not None:
            conditions.append(CooperativeMember.id != other_than)
        return bool(await self._session.scalar(select(exists().where(*conditions))))

    async def add_member(self, member: CooperativeMember) -> CooperativeMember:
        self._session.add(member)
        await self._session.flush()
        return member

    async def get_member(
        self, cooperative_id: uuid.UUID, member_id: uuid.UUID
    ) -> CooperativeMember | None:
        result = await self._session.execute(
            select(CooperativeMember).where(
                CooperativeMember.id == member_id,
                CooperativeMember.cooperative_id == cooperative_id,
            )
        )
        return result.scalar_one_or_none()

    async def members(
        self, cooperative_id: uuid.UUID, on: date | None
    ) -> Sequence[tuple[CooperativeMember, Household]]:
        query = (
            select(CooperativeMember, Household)
            .join(Household, Household.id == CooperativeMember.household_id)
            .where(CooperativeMember.cooperative_id == cooperative_id)
        )
        if on is not None:
            query = query.where(active_membership(on))
        result = await self._session.execute(
            query.order_by(
                CooperativeMember.joined_on, CooperativeMember.created_at, CooperativeMember.id
            )
        )
        return [(member, household) for member, household in result]

    async def active_member_ids(self, cooperative_id: uuid.UUID, on: date) -> list[uuid.UUID]:
        result = await self._session.execute(
            select(CooperativeMember.household_id)
            .where(CooperativeMember.cooperative_id == cooperative_id, active_membership(on))
            .distinct()
            .order_by(CooperativeMember.household_id)
        )
        return list(result.scalars().all())

    async def flush(self) -> None:
        await self._session.flush()
