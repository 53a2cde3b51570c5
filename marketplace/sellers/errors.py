"""Errors a client of the sellers domain can branch on."""

from __future__ import annotations

from marketplace.errors import Conflict, FieldError, NotFound, PermissionDenied


class HouseholdNotFound(NotFound):
    code = "household_not_found"
    title = "No such household"


class CooperativeNotFound(NotFound):
    code = "cooperative_not_found"
    title = "No such cooperative"


class ConsentNotFound(NotFound):
    code = "consent_not_found"
    title = "No such consent for this household"


class MembershipNotFound(NotFound):
    code = "membership_not_found"
    title = "No such membership in this cooperative"


class DuplicateNationalId(Conflict):
    """The same person heads a household already registered: one household per national
    ID, so support and income are never counted twice. The other household is not named."""

    code = "duplicate_national_id"
    title = "A household with this national ID is already registered"

    def __init__(self) -> None:
        super().__init__(
            "national_id: a household with this national ID is already registered",
            errors=[FieldError("national_id", "already registered")],
        )


class FarmerAlreadyLinked(Conflict):
    code = "farmer_already_linked"
    title = "This farmer account is already linked to a household"

    def __init__(self) -> None:
        super().__init__(
            "farmer_user_id: this farmer account is already linked to a household",
            errors=[FieldError("farmer_user_id", "already linked to a household")],
        )


class ActiveConsentExists(Conflict):
    """One active consent per household and helper: change scopes by revoking and
    recording a new one, so the history shows what was allowed when."""

    code = "active_consent_exists"
    title = "This helper already has an active consent for this household"


class AlreadyMember(Conflict):
    code = "already_member"
    title = "The household is already a member of this cooperative over these dates"


class ConsentRequired(PermissionDenied):
    """A helper acts for a household only under its recorded, unrevoked consent."""

    code = "consent_required"
    title = "No active consent from this household for this action"


class MembershipEnded(Conflict):
    code = "membership_ended"
    title = "This membership already has a leaving date"
