"""Request and response bodies of households, reviews, consents and cooperatives.

A household's phone is full or masked depending on who reads it, and its national ID is
present only in the detail view an official of its own jurisdiction reads: the service
decides, these schemas only carry what it decided.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from marketplace.sellers.models import (
    ConsentScope,
    Cooperative,
    HelperAction,
    HelperConsent,
    HouseholdStatusEntry,
    PovertyStatus,
)

HeadName = Annotated[str, msgspec.Meta(min_length=1, max_length=120, examples=["Nguyễn Văn Thành"])]
MembersCount = Annotated[int, msgspec.Meta(ge=1, le=50)]
CommuneCode = Annotated[str, msgspec.Meta(min_length=1, max_length=10, examples=["19996"])]
Village = Annotated[str, msgspec.Meta(max_length=120, examples=["Tổ dân phố Xuân Tháp"])]
PhoneInput = Annotated[str, msgspec.Meta(min_length=1, max_length=20, examples=["0912345678"])]
NationalIdInput = Annotated[
    str, msgspec.Meta(min_length=1, max_length=20, examples=["046072001234"])
]
BankBin = Annotated[str, msgspec.Meta(pattern=r"^\d{6}$", examples=["970405"])]
BankAccountNumber = Annotated[str, msgspec.Meta(pattern=r"^\d{4,19}$")]
BankAccountName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Amount = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
Deprived = Annotated[int, msgspec.Meta(ge=0, le=50)]
StandardCode = Annotated[str, msgspec.Meta(min_length=1, max_length=32, examples=["07/2021/ND-CP"])]
DecisionNumber = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, examples=["1234/QĐ-UBND"])
]
Authority = Annotated[
    str, msgspec.Meta(min_length=1, max_length=160, examples=["UBND Phường Hương Trà"])
]
Evidence = Annotated[
    str,
    msgspec.Meta(
        min_length=1, max_length=1000, examples=["Biên bản đồng ý số 12/BB ký tại UBND phường"]
    ),
]
Scopes = Annotated[list[ConsentScope], msgspec.Meta(min_length=1, max_length=len(ConsentScope))]
CoopName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RegistrationNumber = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Description = Annotated[str, msgspec.Meta(max_length=5000)]


class ReviewCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A commune review's decision. Give the income and deprivation figures together (or
    neither) to see the classification they imply next to the decision."""

    status: PovertyStatus
    review_date: date
    decision_number: DecisionNumber
    deciding_authority: Authority
    standard_code: StandardCode | None = None
    """Defaults to the standard in force on review_date."""
    income_per_person_month: Amount | None = None
    deprived_indicators: Deprived | None = None


class HouseholdCreate(msgspec.Struct, forbid_unknown_fields=True):
    head_name: HeadName
    members_count: MembersCount
    commune_code: CommuneCode
    phone: PhoneInput
    national_id: NationalIdInput
    village: Village = ""
    bank_bin: BankBin | None = None
    bank_account_number: BankAccountNumber | None = None
    bank_account_name: BankAccountName | None = None
    farmer_user_id: uuid.UUID | None = None
    initial_review: ReviewCreate | None = None
    """The household's current status from the latest review, recorded with it (officials)."""


class HouseholdUpdate(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Fields left out stay as they are; `null` clears an optional one. The household's
    poverty status is not here: only officials change it, by recording a review."""

    head_name: HeadName | msgspec.UnsetType = msgspec.UNSET
    members_count: MembersCount | msgspec.UnsetType = msgspec.UNSET
    village: Village | msgspec.UnsetType = msgspec.UNSET
    phone: PhoneInput | msgspec.UnsetType = msgspec.UNSET
    bank_bin: BankBin | msgspec.UnsetType | None = msgspec.UNSET
    bank_account_number: BankAccountNumber | msgspec.UnsetType | None = msgspec.UNSET
    bank_account_name: BankAccountName | msgspec.UnsetType | None = msgspec.UNSET
    commune_code: CommuneCode | msgspec.UnsetType = msgspec.UNSET
    """Officials and admins only: the household moved."""
    national_id: NationalIdInput | msgspec.UnsetType = msgspec.UNSET
    """Officials and admins only: a correction."""
    farmer_user_id: uuid.UUID | msgspec.UnsetType | None = msgspec.UNSET
    """Officials and admins only: link or unlink the household's farmer account."""


class HouseholdRead(msgspec.Struct):
    id: uuid.UUID
    head_name: str
    members_count: int
    commune_code: str
    province_code: str
    admin_version: str
    village: str
    phone: str
    """Full for the household, its helper, its cooperative's manager and officials of its
    jurisdiction; masked (`0912***678`) for everyone else."""
    phone_masked: bool
    national_id: str | None
    """Only in the detail view an official of the household's own jurisdiction reads."""
    bank_bin: str | None
    bank_account_number: str | None
    """Masked like the phone."""
    bank_account_name: str | None
    farmer_user_id: uuid.UUID | None
    created_by_user_id: uuid.UUID | None
    created_at: datetime
    status_today: PovertyStatus | None
    newly_escaped_today: bool


class HouseholdSummary(msgspec.Struct):
    id: uuid.UUID
    head_name: str
    commune_code: str
    province_code: str
    village: str
    phone: str
    phone_masked: bool
    status: PovertyStatus | None
    """Status on the page's date."""
    newly_escaped: bool
    created_at: datetime


class HouseholdPage(msgspec.Struct):
    items: list[HouseholdSummary]
    on: date
    next_cursor: str | None
    """Pass as `cursor` for the next page; null on the last page."""


class StatusEntryRead(msgspec.Struct):
    id: uuid.UUID
    household_id: uuid.UUID
    status: PovertyStatus
    review_date: date
    standard_code: str
    decision_number: str
    deciding_authority: str
    recorded_by_user_id: uuid.UUID | None
    income_per_person_month: int | None
    """Hidden (null) from readers who may not see the household's income."""
    deprived_indicators: int | None
    implied_classification: str | None
    """What the figures imply under the standard (poor, near_poor, not_poor)."""
    mismatch: bool
    """The decision differs from what the figures imply; the decision stands."""
    created_at: datetime


class StatusOnRead(msgspec.Struct):
    household_id: uuid.UUID
    on: date
    status: PovertyStatus | None
    """The latest review on or before `on`; null before the first review."""
    newly_escaped: bool
    """Neither poor nor near-poor on `on`, and left those lists within the 3 years up to it."""
    escaped_on: date | None
    review_date: date | None


class ConsentCreate(msgspec.Struct, forbid_unknown_fields=True):
    helper_user_id: uuid.UUID
    scopes: Scopes
    evidence: Evidence
    """How the household gave consent (form number, witness, place)."""


class ConsentRead(msgspec.Struct):
    id: uuid.UUID
    household_id: uuid.UUID
    helper_user_id: uuid.UUID
    scopes: list[ConsentScope]
    granted_at: datetime
    recorded_by_user_id: uuid.UUID | None
    evidence: str
    revoked_at: datetime | None
    active: bool


class HelperActionRead(msgspec.Struct):
    id: uuid.UUID
    household_id: uuid.UUID
    helper_user_id: uuid.UUID
    consent_id: uuid.UUID
    action: str
    target_id: uuid.UUID | None
    created_at: datetime


class CooperativeCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: CoopName
    commune_code: CommuneCode
    registration_number: RegistrationNumber | None = None
    description: Description = ""


class CooperativeRead(msgspec.Struct):
    id: uuid.UUID
    name: str
    commune_code: str
    province_code: str
    admin_version: str
    registration_number: str | None
    description: str
    created_at: datetime


class ManagerCreate(msgspec.Struct, forbid_unknown_fields=True):
    user_id: uuid.UUID


class ManagerRead(msgspec.Struct):
    cooperative_id: uuid.UUID
    user_id: uuid.UUID


class MemberCreate(msgspec.Struct, forbid_unknown_fields=True):
    household_id: uuid.UUID
    joined_on: date
    left_on: date | None = None


class MemberLeave(msgspec.Struct, forbid_unknown_fields=True):
    left_on: date
    """The first day the household is no longer a member."""


class MemberRead(msgspec.Struct):
    id: uuid.UUID
    cooperative_id: uuid.UUID
    household_id: uuid.UUID
    head_name: str
    commune_code: str
    village: str
    phone: str
    phone_masked: bool
    joined_on: date
    left_on: date | None


def cooperative_read(cooperative: Cooperative) -> CooperativeRead:
    return CooperativeRead(
        id=cooperative.id,
        name=cooperative.name,
        commune_code=cooperative.commune_code,
        province_code=cooperative.province_code,
        admin_version=cooperative.admin_version,
        registration_number=cooperative.registration_number,
        description=cooperative.description,
        created_at=cooperative.created_at,
    )


def consent_read(consent: HelperConsent) -> ConsentRead:
    return ConsentRead(
        id=consent.id,
        household_id=consent.household_id,
        helper_user_id=consent.helper_user_id,
        scopes=[ConsentScope(scope) for scope in consent.scopes],
        granted_at=consent.granted_at,
        recorded_by_user_id=consent.recorded_by_user_id,
        evidence=consent.evidence,
        revoked_at=consent.revoked_at,
        active=consent.revoked_at is None,
    )


def helper_action_read(action: HelperAction) -> HelperActionRead:
    return HelperActionRead(
        id=action.id,
        household_id=action.household_id,
        helper_user_id=action.helper_user_id,
        consent_id=action.consent_id,
        action=action.action,
        target_id=action.target_id,
        created_at=action.created_at,
    )


def status_entry_read(entry: HouseholdStatusEntry, *, show_income: bool) -> StatusEntryRead:
    """`show_income=False` hides the review's figures from readers who may not see them."""
    return StatusEntryRead(
        id=entry.id,
        household_id=entry.household_id,
        status=PovertyStatus(entry.status),
        review_date=entry.review_date,
        standard_code=entry.standard_code,
        decision_number=entry.decision_number,
        deciding_authority=entry.deciding_authority,
        recorded_by_user_id=entry.recorded_by_user_id,
        income_per_person_month=entry.income_per_person_month if show_income else None,
        deprived_indicators=entry.deprived_indicators if show_income else None,
        implied_classification=entry.implied_classification,
        mismatch=entry.mismatch,
        created_at=entry.created_at,
    )
