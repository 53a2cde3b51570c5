"""Personal data of households: national IDs and phone numbers.

A national ID is kept twice and never in the clear: a keyed hash (HMAC-SHA256 under
`settings.security.pii_hmac_key`) that finds duplicates and serves look-ups without being
reversible by anyone holding only the database, and a Fernet token (under
`settings.security.pii_encryption_key`) that officials of the household's own jurisdiction
may have decrypted. Neither the ID nor a full phone number is ever passed to a log call.

Only the 12-digit citizen identity number (CCCD / căn cước) is accepted: the old 9-digit
CMND stopped being valid on 2025-01-01 (Law on Identification 26/2023/QH15, art. 46), so a
household registered today always has a 12-digit number.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from cryptography.fernet import Fernet, InvalidToken

NATIONAL_ID_LENGTH = 12
OLD_CMND_LENGTH = 9

_ID_SEPARATORS = re.compile(r"[\s.\-]")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]")
_VN_MOBILE = re.compile(r"^0[35789]\d{8}$")


class InvalidNationalId(ValueError):
    """The text is not a citizen identity number; the message never repeats the input."""


class InvalidPhone(ValueError):
    """The text is not a Vietnamese mobile number; the message never repeats the input."""


def normalise_national_id(raw: str) -> str:
    """The 12 digits of a CCCD, with spaces, dots and dashes people type dropped."""
    digits = _ID_SEPARATORS.sub("", raw.strip())
    if digits and (not digits.isascii() or not digits.isdigit()):
        raise InvalidNationalId("must contain only digits")
    if len(digits) == OLD_CMND_LENGTH:
        raise InvalidNationalId(
            "9-digit CMND numbers are no longer valid since 2025-01-01; give the 12-digit CCCD"
        )
    if len(digits) != NATIONAL_ID_LENGTH:
        raise InvalidNationalId(f"must be {NATIONAL_ID_LENGTH} digits (CCCD)")
    return digits


def _key_bytes(key: str, name: str) -> bytes:
    if not key:
        # An empty key would make the "keyed" hash a plain, guessable SHA-256 of 10^12 values.
        raise ValueError(f"{name} is not configured")
    return key.encode()


def national_id_hash(key: str, national_id: str) -> str:
    """Hex HMAC-SHA256 of the normalised ID: the same person always gets the same digest,
    whatever separators were typed, so a second registration is found."""
    normalised = normalise_national_id(national_id)
    digest = hmac.new(_key_bytes(key, "pii_hmac_key"), normalised.encode(), hashlib.sha256)
    return digest.hexdigest()


def encrypt_national_id(key: str, national_id: str) -> str:
    fernet = Fernet(_key_bytes(key, "pii_encryption_key"))
    return fernet.encrypt(normalise_national_id(national_id).encode()).decode("ascii")


def decrypt_national_id(key: str, token: str) -> str:
    """The clear ID, for the officials' detail view only. A token made under another key
    (a rotated key not re-encrypted) is an error, not an empty value."""
    fernet = Fernet(_key_bytes(key, "pii_encryption_key"))
    try:
        return fernet.decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise ValueError("the national ID cannot be decrypted with the configured key") from None


def normalise_phone(raw: str) -> str:
    """A Vietnamese mobile number as its 10 digits `0XXXXXXXXX`.

    Spaces, dots, dashes and brackets are dropped; `+84`/`84` followed by the 9 digits is
    the same number. Only mobile prefixes 03, 05, 07, 08 and 09 are accepted."""
    digits = _PHONE_SEPARATORS.sub("", raw.strip())
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if not digits.isascii() or not _VN_MOBILE.match(digits):
        raise InvalidPhone("must be a Vietnamese mobile number: 0 then 3, 5, 7, 8 or 9, 10 digits")
    return digits


def mask_phone(phone: str) -> str:
    """`0912345678` -> `0912***678`: enough to recognise one's own number, not to call it."""
    if len(phone) < 8:
        return "***"
    return f"{phone[:4]}***{phone[-3:]}"
