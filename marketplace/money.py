"""Vietnamese đồng as text: whole đồng in, whole đồng out.

Formatting follows Vietnamese usage, "180.000 ₫": a dot between thousands, then a no-break space
(U+00A0) and the đồng sign, so a line break never separates an amount from its currency.
Negative amounts (refunds, reversals) read "-180.000 ₫".

Parsing accepts what people and bank statements actually write, and refuses anything that
could mean two amounts. VND has no minor unit, so a separator is always a thousands separator,
and only a well-formed grouping is accepted:

- plain digits: "180000", "0";
- thousands grouped by dots or by commas (one kind per number, groups of exactly 3):
  "180.000", "1.234.567", "180,000";
- either of the above followed by a currency mark, with or without a space: "₫", "đ", "đồng",
  "VND", "VNĐ" (any case): "180.000 ₫", "180000đ", "180,000 VND";
- a whole number of thousands with "k", the common shorthand: "180k" = 180,000 (no separators
  and no currency mark with "k");
- an optional leading "-".

Refused with ValueError: decimals or anything that looks like them ("1.5", "180.000,00",
"1,5k"), mixed or misplaced separators ("1.234,567", "18.0000"), leading zeros ("0180"), a
space as separator ("180 000"), "+", empty text. Non-text input is a TypeError.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

NO_BREAK_SPACE: Final = "\u00a0"
DONG_SIGN: Final = "₫"

_NUMBER = r"0|[1-9][0-9]{0,2}(?P<sep>[.,])[0-9]{3}(?:(?P=sep)[0-9]{3})*|[1-9][0-9]*"
_CURRENCY = r"(?i:₫|đồng|đ|vnđ|vnd)"
_AMOUNT = re.compile(
    rf"(?P<sign>-)?(?:(?P<number>{_NUMBER})(?:\s*{_CURRENCY})?|(?P<thousands>0|[1-9][0-9]*)[kK])"
)


def format_vnd(amount: int) -> str:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be an int number of đồng, got {type(amount).__name__}")
    sign = "-" if amount < 0 else ""
    grouped = f"{abs(amount):,}".replace(",", ".")
    return f"{sign}{grouped}{NO_BREAK_SPACE}{DONG_SIGN}"


def parse_vnd(text: str) -> int:
    """Whole đồng from text in the forms listed in the module docstring; ValueError otherwise."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    # NFC: "đồng" typed on some keyboards arrives decomposed.
    candidate = unicodedata.normalize("NFC", text).strip()
    match = _AMOUNT.fullmatch(candidate)
    if match is None:
        raise ValueError(f"not an amount in whole đồng: {text!r}")
    if match["thousands"] is not None:
        value = int(match["thousands"]) * 1000
    else:
        value = int(re.sub(r"[.,]", "", match["number"]))
    return -value if match["sign"] else value
