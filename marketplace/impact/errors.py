"""Errors a client of the impact domain can branch on."""

from __future__ import annotations

from marketplace.errors import Conflict, FieldError, NotFound, ValidationFailed


class InvalidSettlementEvent(ValidationFailed):
    """A settlement event that cannot be attributed as sent (a negative amount, a line with
    neither or both of a household and a cooperative, a repeated line). Nothing is written:
    the payments outbox keeps the event and the error names what to fix."""

    code = "invalid_settlement_event"
    title = "The settlement event cannot be attributed"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])


class CannotAttribute(Conflict):
    """The event is well formed but our data cannot attribute it yet (an unknown household,
    a cooperative lot without contributions, a refund of a line never attributed)."""

    code = "cannot_attribute"
    title = "The revenue cannot be attributed to households"


class RefundExceedsAttribution(Conflict):
    code = "refund_exceeds_attribution"
    title = "The refund is larger than what the line still has attributed"


class InvalidMonthRange(ValidationFailed):
    code = "invalid_month_range"
    title = "The month range is not valid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])


class InvalidIncomeShare(ValidationFailed):
    code = "invalid_income_share"
    title = "The income share is not valid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])


class ExportNotFound(NotFound):
    """Also the answer for another user's export: its existence is not revealed."""

    code = "export_not_found"
    title = "No such export"


class ExportNotReady(Conflict):
    code = "export_not_ready"
    title = "The export is not finished"


class UnknownProvince(ValidationFailed):
    code = "unknown_province"
    title = "The province code is not a known province"

    def __init__(self, field: str, province_code: str) -> None:
        message = f"{province_code!r} is not a known province"
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])
