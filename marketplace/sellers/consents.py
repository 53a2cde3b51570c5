"""Recording and revoking a household's consent that a community digital helper act for it.

Consent names who (a helper account), when (granted, revoked), what (scopes) and how it was
given (evidence). Checking consent and recording what a helper then does is
`SellersService.require_helper_consent` / `record_helper_action`, which other domains call.
"""

from __future__ import annotations

import uuid

import structlog

from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.db import utcnow
from marketplace.errors import PermissionDenied
from marketplace.resources import Clock
from marketplace.sellers.errors import ActiveConsentExists, ConsentNotFound, HouseholdNotFound
from marketplace.sellers.models import HelperConsent, Household
from marketplace.sellers.policy import check_account_role, check_consent_keeper
from marketplace.sellers.repository import ConsentRepository, HouseholdRepository
from marketplace.sellers.schemas import (
    ConsentCreate,
    ConsentRead,
    HelperActionRead,
    consent_read,
    helper_action_read,
)
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

MAX_ACTIONS = 200


class ConsentService:
    def __init__(self, uow: UnitOfWork, settings: Settings, clock: Clock = utcnow) -> None:
        self._uow = uow
        self._settings = settings
        self._clock = clock
        self._households = HouseholdRepository(uow.session)
        self._consents = ConsentRepository(uow.session)

    async def record_consent(
        self, user: AuthenticatedUser, household_id: uuid.UUID, data: ConsentCreate
    ) -> ConsentRead:
        """Recorded by the household's own account, an official of its jurisdiction or an
        admin; one active consent per helper (revoke it to change the scopes)."""
        household = await self._household(household_id)
        check_consent_keeper(user, household)
        await check_account_role(
            self._uow,
            self._settings,
            self._clock,
            data.helper_user_id,
            Role.HELPER,
            field="helper_user_id",
        )
        if await self._consents.active(household.id, data.helper_user_id) is not None:
            raise ActiveConsentExists()
        consent = await self._consents.add(
            HelperConsent(
                household_id=household.id,
                helper_user_id=data.helper_user_id,
                scopes=sorted({scope.value for scope in data.scopes}),
                granted_at=self._clock(),
                recorded_by_user_id=user.id,
                evidence=data.evidence.strip(),
            )
        )
        log.info(
            "helper_consent_recorded",
            household_id=str(household.id),
            consent_id=str(consent.id),
            helper_user_id=str(consent.helper_user_id),
            scopes=consent.scopes,
            by_user_id=str(user.id),
        )
        return consent_read(consent)

    async def revoke_consent(
        self, user: AuthenticatedUser, household_id: uuid.UUID, consent_id: uuid.UUID
    ) -> ConsentRead:
        """The household, its officials, admins or the helper itself may end a consent;
        revoking twice keeps the first revocation time."""
        household = await self._household(household_id)
        consent = await self._consents.get(household.id, consent_id)
        if consent is None:
            raise ConsentNotFound()
        if not (user.role is Role.HELPER and consent.helper_user_id == user.id):
            check_consent_keeper(user, household)
        if consent.revoked_at is None:
            now = self._clock()
            await self._consents.revoke(consent.id, now)
            consent.revoked_at = now
            log.info(
                "helper_consent_revoked",
                household_id=str(household.id),
                consent_id=str(consent.id),
                by_user_id=str(user.id),
            )
        return consent_read(consent)

    async def list_consents(
        self, user: AuthenticatedUser, household_id: uuid.UUID
    ) -> list[ConsentRead]:
        """Every consent for the household's keepers; a helper sees only its own."""
        household = await self._household(household_id)
        if user.role is Role.HELPER:
            rows = await self._consents.list_for_household(household.id, helper_user_id=user.id)
            if not rows:
                raise PermissionDenied("no consent of this household names you")
        else:
            check_consent_keeper(user, household)
            rows = await self._consents.list_for_household(household.id)
        return [consent_read(c) for c in rows]

    async def helper_actions(
        self, user: AuthenticatedUser, household_id: uuid.UUID, limit: int = 100
    ) -> list[HelperActionRead]:
        """What helpers did on the household's behalf, newest first."""
        household = await self._household(household_id)
        check_consent_keeper(user, household)
        rows = await self._consents.actions(household.id, max(1, min(limit, MAX_ACTIONS)))
        return [helper_action_read(a) for a in rows]

    async def _household(self, household_id: uuid.UUID) -> Household:
        household = await self._households.get(household_id)
        if household is None:
            raise HouseholdNotFound()
        return household
