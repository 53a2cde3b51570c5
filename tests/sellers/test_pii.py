"""National IDs are kept as a keyed hash and a Fernet token; phones are normalised and masked."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from marketplace.sellers.pii import (
    InvalidNationalId,
    InvalidPhone,
    decrypt_national_id,
    encrypt_national_id,
    mask_phone,
    national_id_hash,
    normalise_national_id,
    normalise_phone,
)
from marketplace.settings import Settings
from tests.sellers.factories import PII_KEYS

HMAC_KEY = "hmac-key-for-these-tests-" + "k" * 20
FERNET_KEY = Fernet.generate_key().decode()
FULL_WIDTH_ID = "".join(chr(0xFF10 + int(d)) for d in "046072001234")
"""Digits a phone keyboard may type: str.isdigit() says yes, we say no."""


def test_the_factories_use_the_pii_keys_of_the_settings_fixture(settings: Settings) -> None:
    assert PII_KEYS.pii_hmac_key == settings.security.pii_hmac_key
    assert PII_KEYS.pii_encryption_key == settings.security.pii_encryption_key


def test_the_same_id_typed_with_separators_hashes_the_same() -> None:
    assert national_id_hash(HMAC_KEY, "046 072 001 234") == national_id_hash(
        HMAC_KEY, "046072001234"
    )
    assert national_id_hash(HMAC_KEY, "046.072.001.234") == national_id_hash(
        HMAC_KEY, "046-072-001234"
    )


def test_the_hash_depends_on_the_key_and_is_not_the_id() -> None:
    digest = national_id_hash(HMAC_KEY, "046072001234")

    assert len(digest) == 64
    assert "046072001234" not in digest
    assert digest != national_id_hash(HMAC_KEY + "x", "046072001234")
    assert digest != national_id_hash(HMAC_KEY, "046072001235")


def test_hashing_without_a_key_is_refused() -> None:
    with pytest.raises(ValueError, match="pii_hmac_key"):
        national_id_hash("", "046072001234")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("046072001", "no longer valid", id="old-9-digit-cmnd"),
        pytest.param("04607200123", "12 digits", id="11-digits"),
        pytest.param("0460720012345", "12 digits", id="13-digits"),
        pytest.param("04607200123A", "only digits", id="letter"),
        pytest.param(FULL_WIDTH_ID, "only digits", id="full-width-digits"),
        pytest.param("", "12 digits", id="empty"),
    ],
)
def test_anything_but_a_12_digit_cccd_is_refused_without_echoing_it(raw: str, message: str) -> None:
    with pytest.raises(InvalidNationalId, match=message) as caught:
        normalise_national_id(raw)
    if raw:
        assert raw not in str(caught.value)


def test_an_encrypted_id_decrypts_to_the_normalised_id_and_only_with_its_key() -> None:
    token = encrypt_national_id(FERNET_KEY, "046 072 001 234")

    assert "046072001234" not in token
    assert decrypt_national_id(FERNET_KEY, token) == "046072001234"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        decrypt_national_id(Fernet.generate_key().decode(), token)


def test_two_encryptions_of_one_id_differ() -> None:
    """Fernet tokens carry a random IV: equal IDs cannot be spotted by equal ciphertexts."""
    assert encrypt_national_id(FERNET_KEY, "046072001234") != encrypt_national_id(
        FERNET_KEY, "046072001234"
    )


@pytest.mark.parametrize(
    "raw",
    ["0912345678", "0912 345 678", "0912.345.678", "0912-345-678", "+84912345678", "84912345678"],
    ids=["plain", "spaces", "dots", "dashes", "plus-84", "84"],
)
def test_phone_numbers_are_normalised_to_ten_digits(raw: str) -> None:
    assert normalise_phone(raw) == "0912345678"


@pytest.mark.parametrize(
    "raw",
    ["0212345678", "091234567", "09123456789", "1912345678", "+8491234567", "09123456ab", ""],
    ids=[
        "landline-prefix",
        "9-digits",
        "11-digits",
        "no-leading-0",
        "short-84",
        "letters",
        "empty",
    ],
)
def test_numbers_that_are_not_vietnamese_mobiles_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)


def test_a_masked_phone_keeps_the_first_four_and_last_three_digits() -> None:
    assert mask_phone("0912345678") == "0912***678"
    assert mask_phone("0387654321") == "0387***321"
