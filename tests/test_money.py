"""Đồng as text: Vietnamese formatting, and strict parsing of what people and banks write."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.money import format_vnd, parse_vnd

NBSP = "\u00a0"


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        pytest.param(180_000, f"180.000{NBSP}₫", id="price"),
        pytest.param(0, f"0{NBSP}₫", id="zero"),
        pytest.param(999, f"999{NBSP}₫", id="no-separator-below-1000"),
        pytest.param(1_000, f"1.000{NBSP}₫", id="one-thousand"),
        pytest.param(1_234_567_890, f"1.234.567.890{NBSP}₫", id="billions"),
        pytest.param(-180_000, f"-180.000{NBSP}₫", id="refund"),
    ],
)
def test_amounts_are_formatted_the_vietnamese_way(amount: int, text: str) -> None:
    assert format_vnd(amount) == text


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param(180000.0, id="float"),
        pytest.param(True, id="bool"),
        pytest.param("1", id="str"),
    ],
)
def test_formatting_refuses_anything_but_an_int(amount: object) -> None:
    with pytest.raises(TypeError):
        format_vnd(amount)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        pytest.param("180000", 180_000, id="plain"),
        pytest.param("180.000", 180_000, id="dot-groups"),
        pytest.param("180,000", 180_000, id="comma-groups"),
        pytest.param("1.234.567", 1_234_567, id="several-dot-groups"),
        pytest.param("180000đ", 180_000, id="d-stroke-suffix"),
        pytest.param(f"180.000{NBSP}₫", 180_000, id="formatted"),
        pytest.param("180.000 ₫", 180_000, id="normal-space-dong-sign"),
        pytest.param("180,000 VND", 180_000, id="vnd"),
        pytest.param("180.000 VNĐ", 180_000, id="vnd-with-d-stroke"),
        pytest.param("50.000 đồng", 50_000, id="dong-word"),
        pytest.param(
            unicodedata.normalize("NFD", "50.000 đồng"), 50_000, id="dong-word-decomposed"
        ),
        pytest.param("180k", 180_000, id="k-shorthand"),
        pytest.param("180K", 180_000, id="upper-k"),
        pytest.param("  180.000  ", 180_000, id="surrounding-spaces"),
        pytest.param("0", 0, id="zero"),
        pytest.param("-180.000 ₫", -180_000, id="negative"),
    ],
)
def test_the_usual_ways_of_writing_an_amount_are_read(text: str, amount: int) -> None:
    assert parse_vnd(text) == amount


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1.5", id="decimal-dot"),
        pytest.param("1,5", id="decimal-comma"),
        pytest.param("180.000,00", id="trailing-decimals"),
        pytest.param("180,000.00", id="english-decimals"),
        pytest.param("1.234,567", id="mixed-separators"),
        pytest.param("18.0000", id="group-of-4"),
        pytest.param("1.2345", id="group-after-dot-too-long"),
        pytest.param(".500", id="leading-separator"),
        pytest.param("0180", id="leading-zero"),
        pytest.param("0.500", id="leading-zero-group"),
        pytest.param("180 000", id="space-separator"),
        pytest.param("1,5k", id="decimal-k"),
        pytest.param("1.000k", id="grouped-k"),
        pytest.param("180k đ", id="k-with-currency"),
        pytest.param("₫180.000", id="currency-first"),
        pytest.param("+180", id="plus-sign"),
        pytest.param("", id="empty"),
        pytest.param("đ", id="currency-only"),
        pytest.param("١٨٠", id="arabic-indic-digits"),
        pytest.param("180 USD", id="other-currency"),
    ],
)
def test_ambiguous_or_malformed_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an amount in whole đồng"):
        parse_vnd(text)


@pytest.mark.parametrize(
    "text",
    [pytest.param(180000, id="int"), pytest.param(1.5, id="float"), pytest.param(True, id="bool")],
)
def test_parsing_refuses_anything_but_text(text: object) -> None:
    with pytest.raises(TypeError):
        parse_vnd(text)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(amount=st.integers(min_value=-(10**18), max_value=10**18))
def test_every_formatted_amount_parses_back(amount: int) -> None:
    assert parse_vnd(format_vnd(amount)) == amount


@settings(max_examples=300, deadline=None)
@given(amount=st.integers(min_value=0, max_value=10**18))
def test_plain_and_comma_grouped_amounts_parse(amount: int) -> None:
    assert parse_vnd(str(amount)) == amount
    assert parse_vnd(f"{amount:,}") == amount
    assert parse_vnd(f"{amount // 1000}k") == amount // 1000 * 1000


@settings(max_examples=300, deadline=None)
@given(whole=st.integers(min_value=0, max_value=10**6), fraction=st.integers(1, 99))
def test_anything_with_one_or_two_decimals_is_refused(whole: int, fraction: int) -> None:
    for separator in ".,":
        with pytest.raises(ValueError, match="not an amount"):
            parse_vnd(f"{whole}{separator}{fraction}")
