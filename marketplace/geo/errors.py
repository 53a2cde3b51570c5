"""Errors a client of the geo domain can branch on."""

from __future__ import annotations

from marketplace.errors import Conflict, FieldError, NotFound, ValidationFailed


class ProvinceNotFound(NotFound):
    code = "province_not_found"
    title = "No such province"


class CommuneNotFound(NotFound):
    code = "commune_not_found"
    title = "No such commune"


class UnknownCommune(ValidationFailed):
    """A request names a commune that does not exist: the client's field is wrong (422),
    not the URL (404), so the error points at the field the caller names."""

    code = "unknown_commune"
    title = "The commune code is not a known commune"

    def __init__(self, field: str, commune_code: str, admin_version: str) -> None:
        message = f"{commune_code!r} is not a commune of administrative version {admin_version}"
        super().__init__(f"{field}: {message}", errors=[FieldError(field, message)])
        self.field = field
        self.commune_code = commune_code


class NotASpecialZone(Conflict):
    """Only a đặc khu has a settable area; a xã or phường area follows from its type."""

    code = "not_a_special_zone"
    title = "Only a special zone's area can be set"
