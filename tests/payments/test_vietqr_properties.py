"""Properties of the VietQR builder: what is built parses back, and any edit is caught."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.payments.vietqr import MAX_AMOUNT, build_vietqr, parse_tlv, parse_vietqr

DIGITS = "0123456789"
PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))

bank_bins = st.text(DIGITS, min_size=6, max_size=6)
accounts = st.text(DIGITS, min_size=1, max_size=19)
amounts = st.none() | st.integers(min_value=1, max_value=MAX_AMOUNT)
descriptions = st.text(PRINTABLE_ASCII, max_size=25)

payloads = st.builds(build_vietqr, bank_bins, accounts, amounts, descriptions)


@settings(max_examples=400, deadline=None)
@given(bank_bin=bank_bins, account=accounts, amount=amounts, description=descriptions)
def test_a_built_payload_parses_back_to_the_same_transfer(
    bank_bin: str, account: str, amount: int | None, description: str
) -> None:
    parsed = parse_vietqr(build_vietqr(bank_bin, account, amount, description))

    assert parsed.bank_bin == bank_bin
    assert parsed.account == account
    assert parsed.amount == amount
    assert parsed.description == description
    assert parsed.is_dynamic == (amount is not None)


@settings(max_examples=300, deadline=None)
@given(payload=payloads)
def test_the_top_level_fields_rebuild_the_payload_exactly(payload: str) -> None:
    fields = parse_tlv(payload)

    assert "".join(f"{tag}{len(value):02d}{value}" for tag, value in fields.items()) == payload


@settings(max_examples=400, deadline=None)
@given(payload=payloads, data=st.data())
def test_changing_any_one_character_is_detected(payload: str, data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(payload) - 1), label="position")
    replacement = data.draw(
        st.sampled_from(PRINTABLE_ASCII).filter(lambda c: c != payload[position]),
        label="replacement",
    )
    tampered = payload[:position] + replacement + payload[position + 1 :]

    # A change before the CRC field is caught by the CRC itself (a one-byte change is a burst
    # shorter than 16 bits); a change to the CRC field breaks its tag or its value.
    message = "CRC mismatch" if position < len(payload) - 8 else "CRC"
    with pytest.raises(ValueError, match=message):
        parse_vietqr(tampered)
