"""Who may see and do what with a household: the one place these rules live.

Readers of a household (issue 4, "PII"):
- the household itself (its linked farmer account), a helper holding its active consent,
  the manager of a cooperative it is an active member of today, and officials of its
  commune or province read the full phone (and bank account number); admins read them
  masked (`0912***678`). Every other role may not read the household at all (403).
- the national ID is decrypted only for the detail view an official of the household's
  own jurisdiction reads.
- income figures of reviews: officials, admins, the household and a helper with
  `view_income` consent; not a cooperative manager.
Editors: officials of its jurisdiction and admins (every field), the household and a helper
with `manage_profile` consent (profile fields only: never the commune, national ID, farmer
link, and never the poverty status, which only a review by an official changes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from marketplace.accounts.errors import UserNotFound
from marketplace.accounts.guards import ensure_jurisdiction
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import Role
from marketplace.accounts.service import AccountService
from marketplace.errors import PermissionDenied, ValidationFailed
from marketplace.resources import Clock
from marketplace.sellers.models import ConsentScope, HelperConsent, Household
from marketplace.sellers.repository import ConsentRepository, CooperativeRepository
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

VIETNAM_TZ = timezone(timedelta(hours=7))
"""Review dates and membership days are Vietnamese calendar days (no daylight saving)."""


def vietnam_today(now: datetime) -> date:
    return now.astimezone(VIETNAM_TZ).date()


@dataclass(frozen=True, slots=True)
class HouseholdAccess:
    """What one reader may see and do with one household."""

    full_phone: bool
    national_id: bool
    income: bool
    edit_profile: bool
    edit_official_fields: bool
    consent: HelperConsent | None = None
    """Set when the reader is a helper acting under this consent."""


ADMIN_ACCESS = HouseholdAccess(
    full_phone=False, national_id=False, income=True, edit_profile=True, edit_official_fields=True
)
OFFICIAL_ACCESS = HouseholdAccess(
    full_phone=True, national_id=True, income=True, edit_profile=True, edit_official_fields=True
)
OWN_ACCESS = HouseholdAccess(
    full_phone=True, national_id=False, income=True, edit_profile=True, edit_official_fields=False
)
MANAGER_ACCESS = HouseholdAccess(
    full_phone=True,
    national_id=False,
    income=False,
    edit_profile=False,
    edit_official_fields=False,
)


def in_jurisdiction(user: AuthenticatedUser, commune_code: str, province_code: str) -> bool:
    """An official whose commune or province holds the place (admins are not officials)."""
    if user.role is not Role.OFFICIAL:
        return False
    try:
        ensure_jurisdiction(user, commune_code=commune_code, province_code=province_code)
    except PermissionDenied:
        return False
    return True


def is_own_household(user: AuthenticatedUser, household: Household) -> bool:
    return user.role is Role.FARMER and household.farmer_user_id == user.id


def check_consent_keeper(user: AuthenticatedUser, household: Household) -> None:
    """The household itself, officials of its jurisdiction and admins keep its consents
    and read what helpers did on its behalf."""
    if user.role is Role.ADMIN or is_own_household(user, household):
        return
    if in_jurisdiction(user, household.commune_code, household.province_code):
        return
    raise PermissionDenied("only the household, its officials or an admin")


async def household_access(
    user: AuthenticatedUser,
    household: Household,
    *,
    consents: ConsentRepository,
    cooperatives: CooperativeRepository,
    today: date,
) -> HouseholdAccess:
    """What `user` may see and do with `household`; 403 when nothing."""
    if user.role is Role.ADMIN:
        return ADMIN_ACCESS
    if user.role is Role.OFFICIAL:
        if in_jurisdiction(user, household.commune_code, household.province_code):
            return OFFICIAL_ACCESS
        raise PermissionDenied("outside your jurisdiction")
    if is_own_household(user, household):
        return OWN_ACCESS
    if user.role is Role.HELPER:
        consent = await consents.active(household.id, user.id)
        if consent is not None:
            return HouseholdAccess(
                full_phone=True,
                national_id=False,
                income=ConsentScope.VIEW_INCOME.value in consent.scopes,
                edit_profile=ConsentScope.MANAGE_PROFILE.value in consent.scopes,
                edit_official_fields=False,
                consent=consent,
            )
    if user.role is Role.COOPERATIVE_MANAGER and await cooperatives.manages_household(
        user.id, household.id, today
    ):
        return MANAGER_ACCESS
    raise PermissionDenied("not a household you may see")


async def check_account_role(
    uow: UnitOfWork,
    settings: Settings,
    clock: Clock,
    user_id: uuid.UUID,
    role: Role,
    *,
    field: str,
) -> None:
    """A request names an account that must be an active account of `role` (422 on
    `field` otherwise: the body is wrong, not the URL)."""
    accounts = AccountService(uow, settings, redis=None, clock=clock)
    try:
        account = await accounts.get_user(user_id)
    except UserNotFound:
        raise ValidationFailed.for_field(field, "no such account") from None
    if account.role is not role or not account.is_active:
        raise ValidationFailed.for_field(field, f"must be an active {role.value} account")
