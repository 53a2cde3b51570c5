"""Households and their poverty status, and the ownership rules other domains rely on.

Who sees and edits what of a household is `marketplace.sellers.policy`; consents are
recorded in `consents.py` and cooperatives run in `cooperatives.py`. Other domains call
this service: `status_on`/`statuses_on`, `require_household_manager` + `record_action`
(or `require_helper_consent` + `record_helper_action`), `require_cooperative_manager`,
`active_members` and `household_ref`.

A household's products are managed by its own account, a helper with `manage_products`
consent (each act recorded on the household's behalf) and admins; a cooperative's by its
managers and admins. A cooperative manager does not manage its members' own listings, and
officials register and review households but do not sell for them.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import msgspec
import structlog

from marketplace.accounts.guards import ensure_jurisdiction
from marketplace.accounts.identity import AuthenticatedUser
from marketplace.accounts.models import JurisdictionLevel, Role
from marketplace.db import utcnow
from marketplace.errors import PermissionDenied, ValidationFailed
from marketplace.geo.service import GeoService
from marketplace.impact.poverty import classify_household, standard_in_force
from marketplace.impact.standards_data import STANDARDS
from marketplace.resources import Clock
from marketplace.sellers.errors import (
    ConsentRequired,
    CooperativeNotFound,
    DuplicateNationalId,
    FarmerAlreadyLinked,
    HouseholdNotFound,
)
from marketplace.sellers.models import (
    ConsentScope,
    HelperAction,
    HelperConsent,
    Household,
    HouseholdStatusEntry,
    PovertyStatus,
)
from marketplace.sellers.pii import (
    InvalidNationalId,
    InvalidPhone,
    decrypt_national_id,
    encrypt_national_id,
    mask_phone,
    national_id_hash,
    normalise_phone,
)
from marketplace.sellers.policy import (
    HouseholdAccess,
    check_account_role,
    household_access,
    in_jurisdiction,
    vietnam_today,
)
from marketplace.sellers.repository import (
    ConsentRepository,
    CooperativeRepository,
    HouseholdRepository,
    StatusRepository,
)
from marketplace.sellers.schemas import (
    HouseholdCreate,
    HouseholdPage,
    HouseholdRead,
    HouseholdSummary,
    HouseholdUpdate,
    ReviewCreate,
    StatusEntryRead,
    StatusOnRead,
    status_entry_read,
)
from marketplace.sellers.standing import Standing, decision_disagrees, standing_on
from marketplace.settings import Settings
from marketplace.unit_of_work import UnitOfWork

log = structlog.get_logger(__name__)

MAX_PAGE = 200
PROFILE_FIELDS = (
    "head_name",
    "members_count",
    "village",
    "bank_bin",
    "bank_account_number",
    "bank_account_name",
)
"""Fields the household and its helper may change (besides the phone)."""
OFFICIAL_ONLY_FIELDS = ("commune_code", "national_id", "farmer_user_id")


@dataclass(frozen=True, slots=True)
class ActingFor:
    """Someone acting for a household; `consent` is set when a helper acts on its behalf,
    and then every action must be recorded with `SellersService.record_action`."""

    household_id: uuid.UUID
    user_id: uuid.UUID
    consent: HelperConsent | None

    @property
    def on_behalf(self) -> bool:
        return self.consent is not None


@dataclass(frozen=True, slots=True)
class HouseholdRef:
    """What other domains may know of a household: no phone, no national ID."""

    id: uuid.UUID
    head_name: str
    commune_code: str
    province_code: str
    admin_version: str
    farmer_user_id: uuid.UUID | None

    @property
    def given_name(self) -> str:
        """Vietnamese names end with the given name: what public traceability shows."""
        return self.head_name.split()[-1] if self.head_name.split() else ""


@dataclass(frozen=True, slots=True)
class CooperativeRef:
    id: uuid.UUID
    name: str
    commune_code: str
    province_code: str
    admin_version: str


def mask_account_number(number: str | None) -> str | None:
    if number is None:
        return None
    return "*" * max(0, len(number) - 4) + number[-4:]


def encode_cursor(created_at: datetime, household_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{household_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_raw, id_raw = raw.split("|", 1)
        created_at = datetime.fromisoformat(created_raw)
        if created_at.tzinfo is None:
            raise ValueError("naive")
        return created_at, uuid.UUID(id_raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed.for_field("cursor", "not a cursor this API returned") from None


def household_ref(household: Household) -> HouseholdRef:
    return HouseholdRef(
        id=household.id,
        head_name=household.head_name,
        commune_code=household.commune_code,
        province_code=household.province_code,
        admin_version=household.admin_version,
        farmer_user_id=household.farmer_user_id,
    )


def _shown_phone(phone: str, full: bool) -> str:
    return phone if full else mask_phone(phone)


def _checked_phone(raw: str) -> str:
    try:
        return normalise_phone(raw)
    except InvalidPhone as exc:
        raise ValidationFailed.for_field("phone", str(exc)) from None


def _check_bank_details(bank_bin: str | None, account_number: str | None) -> None:
    if (bank_bin is None) != (account_number is None):
        raise ValidationFailed.for_field(
            "bank_account_number", "give the bank BIN and the account number together"
        )


@dataclass(frozen=True, slots=True)
class _CheckedReview:
    standard_code: str
    implied: str | None
    mismatch: bool


class SellersService:
    def __init__(self, uow: UnitOfWork, settings: Settings, clock: Clock = utcnow) -> None:
        self._uow = uow
        self._settings = settings
        self._clock = clock
        self._households = HouseholdRepository(uow.session)
        self._statuses = StatusRepository(uow.session)
        self._consents = ConsentRepository(uow.session)
        self._cooperatives = CooperativeRepository(uow.session)
        self._geo = GeoService(uow)

    def today(self) -> date:
        return vietnam_today(self._clock())

    # ---- Households -------------------------------------------------------------------

    async def register_household(
        self, user: AuthenticatedUser, data: HouseholdCreate
    ) -> HouseholdRead:
        """Officials register households of their jurisdiction, admins any. Every check
        runs before the first write, and the insert itself runs in a savepoint, so a
        refused registration leaves nothing behind."""
        commune = await self._geo.require_commune(data.commune_code, field="commune_code")
        ensure_jurisdiction(user, commune_code=commune.code, province_code=commune.province_code)
        if data.initial_review is not None and user.role is not Role.OFFICIAL:
            raise PermissionDenied("only officials record a household's poverty status")
        phone = _checked_phone(data.phone)
        id_hash, id_token = self._protected_national_id(data.national_id)
        _check_bank_details(data.bank_bin, data.bank_account_number)
        if data.farmer_user_id is not None:
            await self._check_farmer(data.farmer_user_id)
        review = None
        if data.initial_review is not None:
            review = self._checked_review(data.initial_review, commune.area.value)
        if await self._households.national_id_taken(id_hash):
            raise DuplicateNationalId()
        household = await self._households.add(
            Household(
                head_name=data.head_name.strip(),
                members_count=data.members_count,
                commune_code=commune.code,
                province_code=commune.province_code,
                admin_version=commune.admin_version,
                village=data.village.strip(),
                phone=phone,
                national_id_hash=id_hash,
                national_id_encrypted=id_token,
                bank_bin=data.bank_bin,
                bank_account_number=data.bank_account_number,
                bank_account_name=data.bank_account_name,
                farmer_user_id=data.farmer_user_id,
                created_by_user_id=user.id,
            )
        )
        if data.initial_review is not None and review is not None:
            await self._add_review(user, household, data.initial_review, review)
        log.info(
            "household_registered",
            household_id=str(household.id),
            commune_code=household.commune_code,
            by_user_id=str(user.id),
        )
        return await self._household_read(household, await self._access(user, household))

    async def get_household(
        self, user: AuthenticatedUser, household_id: uuid.UUID
    ) -> HouseholdRead:
        household = await self._household(household_id)
        return await self._household_read(household, await self._access(user, household))

    async def list_households(
        self,
        user: AuthenticatedUser,
        *,
        on: date | None = None,
        status: PovertyStatus | None = None,
        commune_code: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> HouseholdPage:
        """Officials list their jurisdiction, admins everything; keyset pages in
        registration order. `status` filters on the recorded status on `on` (today)."""
        day = on or self.today()
        province_code: str | None = None
        if commune_code is not None:
            commune = await self._geo.require_commune(commune_code, field="commune_code")
            ensure_jurisdiction(
                user, commune_code=commune.code, province_code=commune.province_code
            )
            commune_code = commune.code
        elif user.role is Role.OFFICIAL:
            if user.jurisdiction_level is JurisdictionLevel.COMMUNE:
                commune_code = user.jurisdiction_code
            else:
                province_code = user.jurisdiction_code
        elif user.role is not Role.ADMIN:
            raise PermissionDenied("only officials and admins list households")
        limit = max(1, min(limit, MAX_PAGE))
        rows = await self._households.page(
            limit=limit + 1,
            after=decode_cursor(cursor) if cursor else None,
            commune_code=commune_code,
            province_code=province_code,
            status=status,
            on=day,
        )
        page = list(rows[:limit])
        standings = await self.standings_on([h.id for h in page], day)
        items = [
            self._summary(h, standings[h.id], full_phone=user.role is Role.OFFICIAL) for h in page
        ]
        next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None
        return HouseholdPage(items=items, on=day, next_cursor=next_cursor)

    async def my_households(self, user: AuthenticatedUser) -> list[HouseholdSummary]:
        """A farmer's own household, or the households a helper holds active consent for."""
        if user.role is Role.FARMER:
            own = await self._households.get_by_farmer(user.id)
            households: Sequence[Household] = [own] if own else []
        elif user.role is Role.HELPER:
            households = await self._consents.households_helped(user.id)
        else:
            raise PermissionDenied("only farmers and helpers have households of their own")
        standings = await self.standings_on([h.id for h in households], self.today())
        return [self._summary(h, standings[h.id], full_phone=True) for h in households]

    async def update_household(
        self, user: AuthenticatedUser, household_id: uuid.UUID, data: HouseholdUpdate
    ) -> HouseholdRead:
        household = await self._household(household_id, for_update=True)
        access = await self._access(user, household)
        if not access.edit_profile:
            raise PermissionDenied("you may read this household but not change it")
        for name in OFFICIAL_ONLY_FIELDS:
            if getattr(data, name) is not msgspec.UNSET and not access.edit_official_fields:
                raise PermissionDenied(f"{name} may be changed only by officials and admins")
        changed = await self._apply_update(user, household, data)
        _check_bank_details(household.bank_bin, household.bank_account_number)
        await self._households.flush_changes()
        if access.consent is not None:
            await self.record_helper_action(access.consent, "household.update", household.id)
        log.info(
            "household_updated",
            household_id=str(household.id),
            fields=sorted(changed),
            by_user_id=str(user.id),
        )
        return await self._household_read(household, access)

    async def _apply_update(
        self, user: AuthenticatedUser, household: Household, data: HouseholdUpdate
    ) -> set[str]:
        changed: set[str] = set()
        for name in PROFILE_FIELDS:
            value = getattr(data, name)
            if value is not msgspec.UNSET:
                setattr(household, name, value.strip() if isinstance(value, str) else value)
                changed.add(name)
        if not isinstance(data.phone, msgspec.UnsetType):
            household.phone = _checked_phone(data.phone)
            changed.add("phone")
        return changed | await self._apply_official_fields(user, household, data)

    async def _apply_official_fields(
        self, user: AuthenticatedUser, household: Household, data: HouseholdUpdate
    ) -> set[str]:
        changed: set[str] = set()
        if not isinstance(data.commune_code, msgspec.UnsetType):
            commune = await self._geo.require_commune(data.commune_code, field="commune_code")
            ensure_jurisdiction(
                user, commune_code=commune.code, province_code=commune.province_code
            )
            household.commune_code = commune.code
            household.province_code = commune.province_code
            household.admin_version = commune.admin_version
            changed.add("commune_code")
        if not isinstance(data.national_id, msgspec.UnsetType):
            id_hash, id_token = self._protected_national_id(data.national_id)
            if await self._households.national_id_taken(id_hash, other_than=household.id):
                raise DuplicateNationalId()
            household.national_id_hash = id_hash
            household.national_id_encrypted = id_token
            changed.add("national_id")
        if not isinstance(data.farmer_user_id, msgspec.UnsetType):
            if data.farmer_user_id is not None:
                await self._check_farmer(data.farmer_user_id)
                linked = await self._households.get_by_farmer(data.farmer_user_id)
                if linked is not None and linked.id != household.id:
                    raise FarmerAlreadyLinked()
            household.farmer_user_id = data.farmer_user_id
            changed.add("farmer_user_id")
        return changed

    async def find_household_by_national_id(self, national_id: str) -> HouseholdRef | None:
        """For idempotent imports and seeding: look up by the keyed hash, never the clear ID."""
        id_hash, _ = self._protected_national_id(national_id)
        household = await self._households.find_by_national_id_hash(id_hash)
        return household_ref(household) if household else None

    async def household_ref(self, household_id: uuid.UUID) -> HouseholdRef:
        return household_ref(await self._household(household_id))

    async def household_of_farmer(self, farmer_user_id: uuid.UUID) -> HouseholdRef | None:
        household = await self._households.get_by_farmer(farmer_user_id)
        return household_ref(household) if household else None

    # ---- Poverty status -----------------------------------------------------------------

    async def record_review(
        self, user: AuthenticatedUser, household_id: uuid.UUID, data: ReviewCreate
    ) -> StatusEntryRead:
        """An official of the household's commune or province records a review decision;
        the figures' classification is kept next to it and a disagreement flagged."""
        household = await self._household(household_id)
        if not in_jurisdiction(user, household.commune_code, household.province_code):
            raise PermissionDenied("only officials of the household's commune or province")
        area = await self._geo.area_of(household.commune_code)
        checked = self._checked_review(data, area.value)
        entry = await self._add_review(user, household, data, checked)
        return status_entry_read(entry, show_income=True)

    async def _add_review(
        self,
        user: AuthenticatedUser,
        household: Household,
        data: ReviewCreate,
        checked: _CheckedReview,
    ) -> HouseholdStatusEntry:
        entry = await self._statuses.add(
            HouseholdStatusEntry(
                household_id=household.id,
                status=data.status.value,
                review_date=data.review_date,
                standard_code=checked.standard_code,
                decision_number=data.decision_number.strip(),
                deciding_authority=data.deciding_authority.strip(),
                recorded_by_user_id=user.id,
                income_per_person_month=data.income_per_person_month,
                deprived_indicators=data.deprived_indicators,
                implied_classification=checked.implied,
                mismatch=checked.mismatch,
            )
        )
        log.info(
            "household_review_recorded",
            household_id=str(household.id),
            entry_id=str(entry.id),
            status=entry.status,
            mismatch=entry.mismatch,
            by_user_id=str(user.id),
        )
        return entry

    def _checked_review(self, data: ReviewCreate, area: str) -> _CheckedReview:
        if data.review_date > self.today():
            raise ValidationFailed.for_field("review_date", "must not be in the future")
        try:
            in_force = standard_in_force(data.review_date)
        except ValueError:
            raise ValidationFailed.for_field(
                "review_date", "no poverty standard known to us was in force on this day"
            ) from None
        if data.standard_code is not None:
            known = {standard.code: standard for standard in STANDARDS}
            standard = known.get(data.standard_code)
            if standard is None:
                raise ValidationFailed.for_field(
                    "standard_code", f"unknown standard; known: {', '.join(sorted(known))}"
                )
            if not standard.in_force_on(data.review_date):
                raise ValidationFailed.for_field(
                    "standard_code",
                    f"not in force on review_date; {in_force.code} was",
                )
        income, deprived = data.income_per_person_month, data.deprived_indicators
        if (income is None) != (deprived is None):
            missing = "deprived_indicators" if deprived is None else "income_per_person_month"
            raise ValidationFailed.for_field(
                missing, "give income_per_person_month and deprived_indicators together"
            )
        if income is None or deprived is None:
            return _CheckedReview(in_force.code, implied=None, mismatch=False)
        try:
            implied = str(classify_household(income, deprived, area, data.review_date))
        except ValueError as exc:
            raise ValidationFailed.for_field("deprived_indicators", str(exc)) from None
        return _CheckedReview(
            in_force.code, implied=implied, mismatch=decision_disagrees(data.status, implied)
        )

    async def status_of(
        self, user: AuthenticatedUser, household_id: uuid.UUID, on: date | None
    ) -> StatusOnRead:
        household = await self._household(household_id)
        await self._access(user, household)
        day = on or self.today()
        standing = await self.standing_on(household.id, day)
        return StatusOnRead(
            household_id=household.id,
            on=day,
            status=standing.status,
            newly_escaped=standing.newly_escaped,
            escaped_on=standing.escaped_on,
            review_date=standing.review_date,
        )

    async def status_history(
        self, user: AuthenticatedUser, household_id: uuid.UUID
    ) -> list[StatusEntryRead]:
        household = await self._household(household_id)
        access = await self._access(user, household)
        entries = await self._statuses.history(household.id)
        return [status_entry_read(e, show_income=access.income) for e in entries]

    async def status_on(self, household_id: uuid.UUID, day: date) -> PovertyStatus | None:
        """The recorded status in force on `day`: the latest review on or before it."""
        statuses = await self._statuses.statuses_on([household_id], day)
        status = statuses.get(household_id)
        return PovertyStatus(status) if status else None

    async def statuses_on(
        self, household_ids: Sequence[uuid.UUID], day: date
    ) -> dict[uuid.UUID, PovertyStatus | None]:
        """`status_on` for many households in one query; every id is a key."""
        found = await self._statuses.statuses_on(list(dict.fromkeys(household_ids)), day)
        return {
            household_id: PovertyStatus(found[household_id]) if household_id in found else None
            for household_id in household_ids
        }

    async def standing_on(self, household_id: uuid.UUID, day: date) -> Standing:
        """Status on `day` and the derived "newly escaped" flag."""
        return standing_on(await self._statuses.history(household_id, until=day), day)

    async def standings_on(
        self, household_ids: Sequence[uuid.UUID], day: date
    ) -> dict[uuid.UUID, Standing]:
        entries = await self._statuses.histories(list(dict.fromkeys(household_ids)), until=day)
        by_household: dict[uuid.UUID, list[HouseholdStatusEntry]] = {
            household_id: [] for household_id in household_ids
        }
        for entry in entries:
            by_household[entry.household_id].append(entry)
        return {hid: standing_on(rows, day) for hid, rows in by_household.items()}

    # ---- Helpers acting for a household ------------------------------------------------

    async def require_helper_consent(
        self, user: AuthenticatedUser, household_id: uuid.UUID, scope: ConsentScope
    ) -> HelperConsent:
        """The helper's active consent from this household covering `scope`, or 403."""
        if user.role is not Role.HELPER:
            raise ConsentRequired("only a helper acts under a household's consent")
        consent = await self._consents.active(household_id, user.id)
        if consent is None or scope.value not in consent.scopes:
            raise ConsentRequired(f"no active consent of this household for {scope.value}")
        return consent

    async def record_helper_action(
        self, consent: HelperConsent, action: str, target_id: uuid.UUID | None = None
    ) -> HelperAction:
        """Record that the helper did `action` (e.g. "product.update") on the household's
        behalf, under this consent."""
        row = await self._consents.add_action(
            HelperAction(
                household_id=consent.household_id,
                helper_user_id=consent.helper_user_id,
                consent_id=consent.id,
                action=action,
                target_id=target_id,
            )
        )
        log.info(
            "helper_action_recorded",
            household_id=str(consent.household_id),
            helper_user_id=str(consent.helper_user_id),
            action=action,
            target_id=str(target_id) if target_id else None,
        )
        return row

    # ---- Ownership, for other domains ---------------------------------------------------

    async def can_manage_household(self, user: AuthenticatedUser, household_id: uuid.UUID) -> bool:
        """Admins, the household's own account and a helper with `manage_products` consent
        manage its products. Nothing is recorded: call `require_household_manager` to act."""
        household = await self._households.get(household_id)
        if household is None:
            return False
        if user.role is Role.ADMIN:
            return True
        if user.role is Role.FARMER:
            return household.farmer_user_id == user.id
        if user.role is Role.HELPER:
            consent = await self._consents.active(household_id, user.id)
            return consent is not None and ConsentScope.MANAGE_PRODUCTS.value in consent.scopes
        return False

    async def require_household_manager(
        self,
        user: AuthenticatedUser,
        household_id: uuid.UUID,
        scope: ConsentScope = ConsentScope.MANAGE_PRODUCTS,
    ) -> ActingFor:
        """Who acts for the household, or 404/403. A helper needs an active consent with
        `scope`; record what it then does with `record_action`."""
        household = await self._household(household_id)
        if user.role is Role.ADMIN or (
            user.role is Role.FARMER and household.farmer_user_id == user.id
        ):
            return ActingFor(household_id=household.id, user_id=user.id, consent=None)
        if user.role is Role.HELPER:
            consent = await self.require_helper_consent(user, household.id, scope)
            return ActingFor(household_id=household.id, user_id=user.id, consent=consent)
        raise PermissionDenied("you do not manage this household")

    async def record_action(
        self, acting: ActingFor, action: str, target_id: uuid.UUID | None = None
    ) -> None:
        """Records a helper's action on the household's behalf; the household's own and
        admins' actions need no such record."""
        if acting.consent is not None:
            await self.record_helper_action(acting.consent, action, target_id)

    async def can_manage_cooperative(
        self, user: AuthenticatedUser, cooperative_id: uuid.UUID
    ) -> bool:
        if user.role is Role.ADMIN:
            return True
        return user.role is Role.COOPERATIVE_MANAGER and await self.is_manager(
            user.id, cooperative_id
        )

    async def require_cooperative_manager(
        self, user: AuthenticatedUser, cooperative_id: uuid.UUID
    ) -> CooperativeRef:
        cooperative = await self._cooperatives.get(cooperative_id)
        if cooperative is None:
            raise CooperativeNotFound()
        if not await self.can_manage_cooperative(user, cooperative.id):
            raise PermissionDenied("you do not manage this cooperative")
        return CooperativeRef(
            id=cooperative.id,
            name=cooperative.name,
            commune_code=cooperative.commune_code,
            province_code=cooperative.province_code,
            admin_version=cooperative.admin_version,
        )

    async def is_manager(self, user_id: uuid.UUID, cooperative_id: uuid.UUID) -> bool:
        return await self._cooperatives.is_manager(user_id, cooperative_id)

    async def manages_household(self, user_id: uuid.UUID, household_id: uuid.UUID) -> bool:
        """The user manages a cooperative the household is an active member of today."""
        return await self._cooperatives.manages_household(user_id, household_id, self.today())

    async def active_members(self, cooperative_id: uuid.UUID, on: date) -> list[uuid.UUID]:
        """Ids of the households that are members on `on` (joined on or before it, not
        left on or before it)."""
        return await self._cooperatives.active_member_ids(cooperative_id, on)

    # ---- Internals ----------------------------------------------------------------------

    async def _household(self, household_id: uuid.UUID, *, for_update: bool = False) -> Household:
        household = await (
            self._households.get_for_update(household_id)
            if for_update
            else self._households.get(household_id)
        )
        if household is None:
            raise HouseholdNotFound()
        return household

    async def _household_read(self, household: Household, access: HouseholdAccess) -> HouseholdRead:
        standing = await self.standing_on(household.id, self.today())
        national_id = (
            decrypt_national_id(
                self._settings.security.pii_encryption_key, household.national_id_encrypted
            )
            if access.national_id
            else None
        )
        return HouseholdRead(
            id=household.id,
            head_name=household.head_name,
            members_count=household.members_count,
            commune_code=household.commune_code,
            province_code=household.province_code,
            admin_version=household.admin_version,
            village=household.village,
            phone=_shown_phone(household.phone, access.full_phone),
            phone_masked=not access.full_phone,
            national_id=national_id,
            bank_bin=household.bank_bin,
            bank_account_number=(
                household.bank_account_number
                if access.full_phone
                else mask_account_number(household.bank_account_number)
            ),
            bank_account_name=household.bank_account_name,
            farmer_user_id=household.farmer_user_id,
            created_by_user_id=household.created_by_user_id,
            created_at=household.created_at,
            status_today=standing.status,
            newly_escaped_today=standing.newly_escaped,
        )

    @staticmethod
    def _summary(household: Household, standing: Standing, *, full_phone: bool) -> HouseholdSummary:
        return HouseholdSummary(
            id=household.id,
            head_name=household.head_name,
            commune_code=household.commune_code,
            province_code=household.province_code,
            village=household.village,
            phone=_shown_phone(household.phone, full_phone),
            phone_masked=not full_phone,
            status=standing.status,
            newly_escaped=standing.newly_escaped,
            created_at=household.created_at,
        )

    def _protected_national_id(self, national_id: str) -> tuple[str, str]:
        security = self._settings.security
        try:
            return (
                national_id_hash(security.pii_hmac_key, national_id),
                encrypt_national_id(security.pii_encryption_key, national_id),
            )
        except InvalidNationalId as exc:
            raise ValidationFailed.for_field("national_id", str(exc)) from None

    async def _access(self, user: AuthenticatedUser, household: Household) -> HouseholdAccess:
        return await household_access(
            user,
            household,
            consents=self._consents,
            cooperatives=self._cooperatives,
            today=self.today(),
        )

    async def _check_farmer(self, user_id: uuid.UUID) -> None:
        await check_account_role(
            self._uow, self._settings, self._clock, user_id, Role.FARMER, field="farmer_user_id"
        )
