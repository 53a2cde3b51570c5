"""VietQR payloads: the published NAPAS example, the field rules, the CRC, and the PNG."""

from __future__ import annotations

import io

import pytest
import segno
from PIL import Image

from marketplace.payments.vietqr import (
    build_vietqr,
    crc16_ccitt_false,
    parse_tlv,
    parse_vietqr,
    render_qr_png,
)

PUBLISHED = (
    "00020101021238540010A00000072701240006970436011010175956000208QRIBFTTA"
    "530370454061800005802VN62230819thanh toan don hang630470FA"
)


def signed(body: str) -> str:
    """A payload with a correct CRC, to reach the checks that come after the CRC."""
    unsigned = body + "6304"
    return f"{unsigned}{crc16_ccitt_false(unsigned.encode('ascii')):04X}"


def test_the_published_example_is_reproduced_byte_for_byte() -> None:
    assert build_vietqr("970436", "1017595600", 180000, "thanh toan don hang") == PUBLISHED


def test_the_published_example_parses_back_to_its_transfer() -> None:
    parsed = parse_vietqr(PUBLISHED)

    assert parsed.bank_bin == "970436"
    assert parsed.account == "1017595600"
    assert parsed.amount == 180000
    assert parsed.description == "thanh toan don hang"
    assert parsed.is_dynamic
    assert parsed.service_code == "QRIBFTTA"


def test_an_amount_makes_a_dynamic_qr_with_field_54() -> None:
    fields = parse_tlv(build_vietqr("970436", "1017595600", 250000, "DH7K3Q"))

    assert fields["01"] == "12"
    assert fields["54"] == "250000"


def test_no_amount_makes_a_static_qr_without_field_54() -> None:
    payload = build_vietqr("970436", "1017595600", None, "")
    fields = parse_tlv(payload)

    assert payload == (
        "00020101021138540010A00000072701240006970436011010175956000208QRIBFTTA"
        "53037045802VN630438BB"
    )
    assert fields["01"] == "11"
    assert "54" not in fields
    assert parse_vietqr(payload).amount is None
    assert not parse_vietqr(payload).is_dynamic


def test_fields_come_in_emvco_order_with_the_crc_last() -> None:
    fields = parse_tlv(build_vietqr("970436", "1017595600", 180000, "DH7K3Q"))

    assert list(fields) == ["00", "01", "38", "53", "54", "58", "62", "63"]


def test_field_62_is_present_only_when_the_description_is_not_empty() -> None:
    with_description = parse_tlv(build_vietqr("970436", "1017595600", 180000, "DH7K3Q"))
    without = parse_tlv(build_vietqr("970436", "1017595600", 180000, ""))

    assert parse_tlv(with_description["62"]) == {"08": "DH7K3Q"}
    assert "62" not in without
    assert parse_vietqr(build_vietqr("970436", "1017595600", 180000, "")).description == ""


def test_the_beneficiary_is_napas_with_bin_and_account_nested() -> None:
    merchant = parse_tlv(parse_tlv(PUBLISHED)["38"])

    assert merchant["00"] == "A000000727"
    assert parse_tlv(merchant["01"]) == {"00": "970436", "01": "1017595600"}
    assert merchant["02"] == "QRIBFTTA"


@pytest.mark.parametrize(
    ("account", "amount", "description"),
    [
        pytest.param("1", 1, "", id="one-digit-account-one-dong"),
        pytest.param("9" * 19, 9_999_999_999_999, "x" * 25, id="longest-account-amount-text"),
        pytest.param("0001234", 180000, " !~", id="leading-zeros-and-ascii-punctuation"),
    ],
)
def test_the_limits_of_each_field_are_accepted(account: str, amount: int, description: str) -> None:
    parsed = parse_vietqr(build_vietqr("970436", account, amount, description))

    assert (parsed.account, parsed.amount, parsed.description) == (account, amount, description)


@pytest.mark.parametrize(
    ("bank_bin", "account", "amount", "description"),
    [
        pytest.param("97043", "1017595600", 1, "", id="bin-5-digits"),
        pytest.param("9704360", "1017595600", 1, "", id="bin-7-digits"),
        pytest.param("97O436", "1017595600", 1, "", id="bin-with-letter"),
        pytest.param("٩٧٠٤٣٦", "1017595600", 1, "", id="bin-non-ascii-digits"),
        pytest.param("", "1017595600", 1, "", id="bin-empty"),
        pytest.param("970436", "", 1, "", id="account-empty"),
        pytest.param("970436", "1" * 20, 1, "", id="account-20-digits"),
        pytest.param("970436", "1017 595600", 1, "", id="account-with-space"),
        pytest.param("970436", "10175956A0", 1, "", id="account-with-letter"),
        pytest.param("970436", "1017595600", 0, "", id="amount-zero"),
        pytest.param("970436", "1017595600", -180000, "", id="amount-negative"),
        pytest.param("970436", "1017595600", 10**13, "", id="amount-14-digits"),
        pytest.param("970436", "1017595600", 1, "thanh toán", id="description-diacritics"),
        pytest.param("970436", "1017595600", 1, "line\nbreak", id="description-newline"),
        pytest.param("970436", "1017595600", 1, "tab\there", id="description-tab"),
        pytest.param("970436", "1017595600", 1, "x" * 26, id="description-26-chars"),
        pytest.param("970436", "1017595600", 1, "\x7f", id="description-delete-char"),
    ],
)
def test_an_invalid_field_is_refused(
    bank_bin: str, account: str, amount: int, description: str
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        build_vietqr(bank_bin, account, amount, description)


@pytest.mark.parametrize(
    "amount",
    [pytest.param(True, id="bool"), pytest.param(180000.0, id="float")],
)
def test_an_amount_that_is_not_an_int_is_a_type_error(amount: object) -> None:
    with pytest.raises(TypeError):
        build_vietqr("970436", "1017595600", amount, "")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"123456789", 0x29B1, id="check-value"),
        pytest.param(b"", 0xFFFF, id="empty-is-init"),
        pytest.param(b"A", 0xB915, id="single-byte"),
        pytest.param(PUBLISHED[:-4].encode("ascii"), 0x70FA, id="published-payload"),
    ],
)
def test_crc16_ccitt_false_matches_known_vectors(data: bytes, expected: int) -> None:
    assert crc16_ccitt_false(data) == expected


def test_parse_tlv_reads_fields_in_order() -> None:
    assert parse_tlv("0002010102120804abcd") == {"00": "01", "01": "12", "08": "abcd"}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("000", id="truncated-header"),
        pytest.param("AB0201", id="letters-in-id"),
        pytest.param("00x201", id="letters-in-length"),
        pytest.param("0005abc", id="value-shorter-than-length"),
        pytest.param("0000", id="empty-value"),
        pytest.param("000201000202", id="duplicate-id"),
    ],
)
def test_malformed_tlv_is_refused(payload: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        parse_tlv(payload)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(PUBLISHED[:-4] + "70FB", "CRC mismatch", id="wrong-crc"),
        pytest.param(PUBLISHED[:-4] + "70fa", "upper-case hex", id="lower-case-crc"),
        pytest.param(PUBLISHED[:-8], "does not end with the CRC", id="no-crc"),
        pytest.param(PUBLISHED.replace("180000", "190000"), "CRC mismatch", id="amount-edited"),
        pytest.param(PUBLISHED.replace("don", "dôn"), "ASCII only", id="non-ascii"),
    ],
)
def test_a_payload_whose_crc_does_not_verify_is_refused(payload: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_vietqr(payload)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("000202010212" + PUBLISHED[12:-8], "field 00", id="payload-format-not-01"),
        pytest.param(PUBLISHED[:10] + "13" + PUBLISHED[12:-8], "field 01", id="initiation-13"),
        pytest.param(PUBLISHED[:-8].replace("5303704", "5303840"), "field 53", id="usd"),
        pytest.param(PUBLISHED[:-8].replace("5802VN", "5802TH"), "field 58", id="not-vn"),
        pytest.param(
            PUBLISHED[:-8].replace("A000000727", "A000000728"), "field 38", id="not-napas"
        ),
        pytest.param(
            PUBLISHED[:-8].replace("QRIBFTTA", "QRIBFTTX"), "field 38", id="unknown-service"
        ),
        pytest.param(PUBLISHED[:-8].replace("5406180000", "5406018000"), "amount", id="zero-led"),
        pytest.param(PUBLISHED[:-8].replace("5406180000", "54061800.0"), "amount", id="decimal"),
        pytest.param(PUBLISHED[:-8] + "9908", "field 63", id="crc-inside-another-field"),
    ],
)
def test_a_correctly_signed_payload_that_is_not_a_napas_transfer_is_refused(
    body: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        parse_vietqr(signed(body))


def test_fields_the_builder_does_not_write_are_tolerated_when_parsing() -> None:
    merchant = "0010A00000072701240006970436011010175956000208QRIBFTTC"
    body = f"00020101021138{len(merchant):02d}{merchant}53037045802VN5908NONG SAN6007CAN THO"

    parsed = parse_vietqr(signed(body))

    assert parsed.service_code == "QRIBFTTC"
    assert parsed.amount is None
    assert parsed.description == ""


def test_the_png_shows_the_qr_symbol_of_the_payload() -> None:
    scale, border = 4, 4
    png = render_qr_png(PUBLISHED, scale=scale)
    expected = segno.make_qr(PUBLISHED, error="m", boost_error=False)
    matrix = expected.matrix

    image = Image.open(io.BytesIO(png)).convert("L")
    side = (len(matrix) + 2 * border) * scale

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert image.size == (side, side)
    for row, modules in enumerate(matrix):
        for col, dark in enumerate(modules):
            centre = ((col + border) * scale + scale // 2, (row + border) * scale + scale // 2)
            assert (image.getpixel(centre) == 0) == bool(dark), (row, col)


@pytest.mark.parametrize(
    ("payload", "scale"),
    [
        pytest.param(PUBLISHED[:-1] + "B", 8, id="bad-crc"),
        pytest.param(PUBLISHED, 0, id="scale-zero"),
    ],
)
def test_rendering_refuses_a_bad_payload_or_scale(payload: str, scale: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        render_qr_png(payload, scale=scale)
