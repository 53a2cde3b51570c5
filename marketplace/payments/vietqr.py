"""NAPAS VietQR payloads (EMVCo merchant-presented QR for bank transfers).

A payload is a run of TLV fields: a 2-digit ID, a 2-digit length and the value. The last field
is `63`, a CRC-16/CCITT-FALSE over every character before it *including* the literal `6304`,
written as 4 upper-case hex digits. A QR only invites a transfer: nothing is paid until the
bank's feed is matched to the order (see the payments reconciliation).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Final

import segno

PAYLOAD_FORMAT: Final = "01"
STATIC: Final = "11"
"""Point of initiation for a reusable QR: the payer types the amount."""
DYNAMIC: Final = "12"
"""Point of initiation for a one-payment QR that carries its amount (field 54)."""
NAPAS_AID: Final = "A000000727"
SERVICE_TO_ACCOUNT: Final = "QRIBFTTA"
SERVICE_TO_CARD: Final = "QRIBFTTC"
CURRENCY_VND: Final = "704"
COUNTRY_VN: Final = "VN"

MAX_DESCRIPTION_LENGTH: Final = 25
MAX_AMOUNT: Final = 9_999_999_999_999
"""EMVCo caps field 54 at 13 characters; VND has no decimals, so 13 digits."""

_BIN = re.compile(r"[0-9]{6}")
_ACCOUNT = re.compile(r"[0-9]{1,19}")
_AMOUNT = re.compile(r"[1-9][0-9]{0,12}")
_TLV_HEADER = re.compile(r"[0-9]{4}")
_CRC_TEXT = re.compile(r"[0-9A-F]{4}")
_CRC_TAG: Final = "6304"


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


@dataclass(frozen=True, slots=True)
class VietQRPayload:
    """The transfer a VietQR payload asks for. `amount` is None for a static (reusable) QR."""

    bank_bin: str
    account: str
    amount: int | None
    description: str
    is_dynamic: bool
    service_code: str


def _check_bank_bin(bank_bin: str) -> str:
    if not isinstance(bank_bin, str) or not _BIN.fullmatch(bank_bin):
        raise ValueError(f"bank BIN must be exactly 6 ASCII digits, got {bank_bin!r}")
    return bank_bin


def _check_account(account: str) -> str:
    if not isinstance(account, str) or not _ACCOUNT.fullmatch(account):
        raise ValueError("account number must be 1 to 19 ASCII digits")
    return account


def _check_amount(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int number of đồng, got {type(amount).__name__}")
    if amount <= 0:
        raise ValueError(f"amount must be positive, got {amount}")
    if amount > MAX_AMOUNT:
        raise ValueError(f"amount must fit in 13 digits, got {amount}")
    return amount


def _check_description(description: str) -> str:
    # Banks pass the description through to the statement; only printable ASCII survives
    # every bank's system, and the short payment code in it is what matches the transfer.
    if not isinstance(description, str):
        raise TypeError(f"description must be a str, got {type(description).__name__}")
    if not (description.isascii() and description.isprintable()):
        raise ValueError("description must be printable ASCII (no diacritics or control chars)")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise ValueError(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters, "
            f"got {len(description)}"
        )
    return description


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def _with_crc(body: str) -> str:
    unsigned = body + _CRC_TAG
    return f"{unsigned}{crc16_ccitt_false(unsigned.encode('ascii')):04X}"


def build_vietqr(bank_bin: str, account: str, amount: int | None, description: str) -> str:
    """Dynamic (one payment, field 54) when an amount is given, static (reusable) when None.

    Field 62/08 carries the description only when it is not empty: the payer's bank app then
    pre-fills it, and the bank feed returns it so the transfer can be matched to the order.
    """
    beneficiary = _tlv("00", _check_bank_bin(bank_bin)) + _tlv("01", _check_account(account))
    merchant = _tlv("00", NAPAS_AID) + _tlv("01", beneficiary) + _tlv("02", SERVICE_TO_ACCOUNT)
    fields = [
        _tlv("00", PAYLOAD_FORMAT),
        _tlv("01", STATIC if amount is None else DYNAMIC),
        _tlv("38", merchant),
        _tlv("53", CURRENCY_VND),
    ]
    if amount is not None:
        fields.append(_tlv("54", str(_check_amount(amount))))
    fields.append(_tlv("58", COUNTRY_VN))
    if _check_description(description):
        fields.append(_tlv("62", _tlv("08", description)))
    return _with_crc("".join(fields))


def parse_tlv(payload: str) -> dict[str, str]:
    """Split one level of TLV fields into {ID: value}, in payload order.

    Strict, because a payload we cannot read exactly must not move money: a truncated field,
    a non-numeric ID or length, an empty value or a repeated ID is a ValueError.
    """
    fields: dict[str, str] = {}
    position = 0
    while position < len(payload):
        header = payload[position : position + 4]
        if not _TLV_HEADER.fullmatch(header):
            raise ValueError(f"malformed TLV header {header!r} at position {position}")
        tag, length = header[:2], int(header[2:])
        if length == 0:
            raise ValueError(f"TLV field {tag} at position {position} has an empty value")
        value = payload[position + 4 : position + 4 + length]
        if len(value) != length:
            raise ValueError(f"TLV field {tag} at position {position} is truncated")
        if tag in fields:
            raise ValueError(f"TLV field {tag} appears twice")
        fields[tag] = value
        position += 4 + length
    return fields


def _required(fields: dict[str, str], tag: str, where: str) -> str:
    try:
        return fields[tag]
    except KeyError:
        raise ValueError(f"{where} has no field {tag}") from None


def _expect(fields: dict[str, str], tag: str, expected: frozenset[str], where: str) -> str:
    value = _required(fields, tag, where)
    if value not in expected:
        raise ValueError(f"{where} field {tag} is {value!r}, expected one of {sorted(expected)}")
    return value


def verify_crc(payload: str) -> None:
    """The CRC must be the last field and match everything before its 4 hex digits."""
    if not payload.isascii():
        raise ValueError("a VietQR payload is ASCII only")
    if len(payload) < 8 or payload[-8:-4] != _CRC_TAG:
        raise ValueError("payload does not end with the CRC field 6304")
    written = payload[-4:]
    if not _CRC_TEXT.fullmatch(written):
        raise ValueError(f"CRC {written!r} is not 4 upper-case hex digits")
    computed = crc16_ccitt_false(payload[:-4].encode("ascii"))
    if int(written, 16) != computed:
        raise ValueError(f"CRC mismatch: payload says {written}, content gives {computed:04X}")


def parse_vietqr(payload: str) -> VietQRPayload:
    """Read back a NAPAS bank-transfer payload, refusing anything that is not one exactly.

    Fields we do not use (merchant name, city, ...) are tolerated: banks' own QRs carry them.
    """
    verify_crc(payload)
    fields = parse_tlv(payload)
    if list(fields)[-1] != "63":
        raise ValueError("the CRC field 63 must be the last field")
    _expect(fields, "00", frozenset({PAYLOAD_FORMAT}), "payload")
    initiation = _expect(fields, "01", frozenset({STATIC, DYNAMIC}), "payload")
    _expect(fields, "53", frozenset({CURRENCY_VND}), "payload")
    _expect(fields, "58", frozenset({COUNTRY_VN}), "payload")

    merchant = parse_tlv(_required(fields, "38", "payload"))
    _expect(merchant, "00", frozenset({NAPAS_AID}), "field 38")
    service = _expect(merchant, "02", frozenset({SERVICE_TO_ACCOUNT, SERVICE_TO_CARD}), "field 38")
    beneficiary = parse_tlv(_required(merchant, "01", "field 38"))
    bank_bin = _check_bank_bin(_required(beneficiary, "00", "field 38/01"))
    account = _check_account(_required(beneficiary, "01", "field 38/01"))

    amount: int | None = None
    if "54" in fields:
        if not _AMOUNT.fullmatch(fields["54"]):
            raise ValueError(f"amount {fields['54']!r} is not a positive whole number of đồng")
        amount = int(fields["54"])

    description = ""
    if "62" in fields:
        description = _check_description(parse_tlv(fields["62"]).get("08", ""))

    return VietQRPayload(
        bank_bin=bank_bin,
        account=account,
        amount=amount,
        description=description,
        is_dynamic=initiation == DYNAMIC,
        service_code=service,
    )


def render_qr_png(payload: str, *, scale: int = 8) -> bytes:
    """PNG of the QR symbol, error correction M, quiet zone of 4 modules.

    The payload is verified first: a QR with a wrong CRC is refused by every banking app, so
    showing one to a buyer would only fail later and more confusingly.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive int, got {scale!r}")
    verify_crc(payload)
    symbol = segno.make_qr(payload, error="m", boost_error=False)
    out = io.BytesIO()
    symbol.save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
