"""Orders, cancellations and phone numbers read out of livestream comments.

Buyers order by typing a comment ("chốt A1 x2 0912 345 678") in free Vietnamese, with or
without diacritics. The rules are those of issue 5 ("The comment parser"); each helper below
names the rule it carries. Pure: no I/O, no database, never raises on any text, and cheap
enough to keep up with comment bursts (regexes compiled once, one matcher per set of codes).

Text is compared on a folded form (NFD, marks dropped, đ -> d, lower case) that keeps a map
back to the original characters, because a few words are told apart by their diacritics
after all: number words (`bảy` is 7, `bà` is not a number) and `bó` (a unit) against `bỏ`.

Read where the issue is silent or loose:
- Compound number words: `mười` directly followed by `một` ... `chín` (or `lăm`, the form 15
  takes) is one number, 11 to 19. `hai mươi` and larger are not supported (`mươi` is not a
  number word), so `hai mươi` reads as 2.
- A number may be followed by punctuation that ends it (`A1 x2, B1` and `chốt A1 2.` read 2),
  as long as no letter or digit comes right after that punctuation (`2.5`, `2,5`, `1-2`, `1/2`
  are still not numbers). Before a number only a marker may be glued (`+84`, `-2`, `(2` are not).
- A quantity marker may be glued after a code, not before it: `xA1` is not `A1`.
- A run of 4 or more digits that is the digit part of a whole-token code (`SP1001`) is kept:
  otherwise a legal code with 4 or more digits could never be matched.
- Every word that folds to `bo` other than `bó` and a plain `bo` after a number is the cancel
  word `bỏ` (so are `bò`, `bơ`, `bộ`, `bố`), since diacritics are optional for keywords.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Final, NamedTuple, TypeGuard

__all__ = ["Intent", "ParsedComment", "find_phones", "mask_phones", "parse_comment"]


class Intent(StrEnum):
    ORDER = "order"
    CANCEL = "cancel"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ParsedComment:
    """What a comment asks for: one intent, the codes it names with their quantities, a phone.

    `items` is empty unless the intent is order or cancel; a quantity is None only for a
    cancel that names no number for that code. `phone` is `0XXXXXXXXX` whatever the intent.
    """

    intent: Intent
    items: list[tuple[str, int | None]] = field(default_factory=list)
    phone: str | None = None


# --- Folding ------------------------------------------------------------------------------

# Characters beyond this many distinct ones are folded on every use instead of cached, so a
# flood of exotic characters cannot grow the tables without bound.
_CACHE_LIMIT: Final = 20_000


def _without_marks(text: str) -> str:
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("M"))


def _fold_char(ch: str) -> str:
    # đ/Đ is a letter of its own, not d plus a mark, so NFD leaves it whole. Marks are dropped
    # again after lower-casing: some capitals (İ) lower-case into a letter plus a mark.
    base = _without_marks(unicodedata.normalize("NFD", ch))
    return _without_marks(base.replace("đ", "d").replace("Đ", "d").lower())


class _FoldTable(dict[int, str]):
    """str.translate table: every character to its folded form (possibly empty or longer)."""

    def __missing__(self, codepoint: int) -> str:
        folded = _fold_char(chr(codepoint))
        if len(self) < _CACHE_LIMIT:
            self[codepoint] = folded
        return folded


class _OddTable(dict[int, str | None]):
    """str.translate table that deletes every character folding to exactly one character, so
    what is left says whether folded positions still equal original positions."""

    def __missing__(self, codepoint: int) -> str | None:
        odd = None if len(_FOLD[codepoint]) == 1 else chr(codepoint)
        if len(self) < _CACHE_LIMIT:
            self[codepoint] = odd
        return odd


_FOLD: Final = _FoldTable()
_ODD: Final = _OddTable()


def _fold(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_FOLD)


class _Source:
    """A comment and its folded form, with the way back from folded to original positions."""

    __slots__ = ("_starts", "folded", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.folded = _fold(text)
        # None while folded positions equal original ones (nearly always: precomposed text).
        self._starts: list[int] | None = None
        if not text.isascii() and (len(self.folded) != len(text) or text.translate(_ODD)):
            starts: list[int] = []
            for index, ch in enumerate(text):
                starts.extend([index] * len(_FOLD[ord(ch)]))
            self._starts = starts

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original span of the folded span; marks folded away go with the letter before."""
        starts = self._starts
        if starts is None:
            return start, end
        original_end = starts[end] if end < len(starts) else len(self.text)
        return starts[start], original_end

    def written(self, start: int, end: int) -> str:
        """The original spelling of a folded span, composed and lower-cased for comparison."""
        original_start, original_end = self.span(start, end)
        return unicodedata.normalize("NFC", self.text[original_start:original_end]).lower()


# --- Phones (rule 2) ------------------------------------------------------------------------

_ANY_DIGIT: Final = re.compile(r"[0-9]")
_PHONE: Final = re.compile(
    r"(?<![0-9])(?:0|\+?84)[ .\-]?[35789](?:[ .\-]?[0-9]){8}(?![0-9])",
)
# Mistyped phones (9+ digits joined by single separators, starting with 0, 84 or +84) and
# runs of 4+ digits: neither phone nor quantity.
_MISTYPED_PHONE_PATTERN: Final = r"(?<![0-9])(?:0(?:[ .\-]?[0-9]){8,}|\+?84(?:[ .\-]?[0-9]){7,})"
_MISTYPED_PHONE: Final = re.compile(_MISTYPED_PHONE_PATTERN)
_NOT_A_NUMBER: Final = re.compile(rf"(?P<mistyped>{_MISTYPED_PHONE_PATTERN})|(?P<run>[0-9]{{4,}})")
_NON_DIGIT: Final = re.compile(r"[^0-9]")


def _phone_digits(written: str) -> str:
    digits = _NON_DIGIT.sub("", written)
    return "0" + digits[2:] if digits.startswith("84") else digits


def _spaces(match: re.Match[str]) -> str:
    return " " * (match.end() - match.start())


def _masked(digits: str) -> str:
    return f"{digits[:4]}***{digits[-3:]}"


def find_phones(text: str) -> list[str]:
    """Every Vietnamese mobile number in the text, in order, as `0XXXXXXXXX`."""
    if not _ANY_DIGIT.search(text):
        return []
    return [_phone_digits(m.group()) for m in _PHONE.finditer(_Source(text).folded)]


def mask_phones(text: str) -> str:
    """The text as the public feed shows it: each phone, and each mistyped phone (it still
    gives most of a number away), becomes its first 4 and last 3 digits around `***`."""
    masked = _mask_once(text)
    # The digits left visible can start a new phone with the digits that follow
    # ("0912345084 912 345 6" shows "0912***084 912 345 6"); mask until nothing is left.
    # Each round replaces 9 or more digits by 7, so this ends.
    while masked != text:
        text, masked = masked, _mask_once(masked)
    return masked


def _mask_once(text: str) -> str:
    if not _ANY_DIGIT.search(text):
        return text
    source = _Source(text)
    replacements = [
        (m.start(), m.end(), _masked(_phone_digits(m.group())))
        for m in _PHONE.finditer(source.folded)
    ]
    without_phones = _PHONE.sub(_spaces, source.folded)
    replacements += [
        (m.start(), m.end(), _masked(_NON_DIGIT.sub("", m.group())))
        for m in _MISTYPED_PHONE.finditer(without_phones)
    ]
    if not replacements:
        return text
    parts: list[str] = []
    position = 0
    for start, end, masked in sorted(replacements):
        original_start, original_end = source.span(start, end)
        parts += (text[position:original_start], masked)
        position = original_end
    parts.append(text[position:])
    return "".join(parts)


# --- Vocabulary (rules 3 and 6), all in folded form unless said otherwise -------------------


def _folded_set(*words: str) -> frozenset[str]:
    return frozenset(_fold(word) for word in words)


_ORDER_WORDS: Final = _folded_set("chốt", "lấy", "đặt", "mua", "order")
_CANCEL_WORDS: Final = _folded_set("hủy", "cancel")
_NEGATIONS: Final = _folded_set("không", "ko", "k")
# Question phrases whose second word is a negation: that negation is not a cancel.
_QUESTION_OPENERS: Final = _folded_set("còn", "được")
_QUESTION_NEGATIONS: Final = _folded_set("không", "ko")
_QUESTION_PAIRS: Final = frozenset(
    (_fold(first), _fold(second))
    for first, second in (
        ("bao", "nhiêu"),
        ("còn", "không"),
        ("còn", "ko"),
        ("được", "không"),
        ("được", "ko"),
        ("không", "ạ"),
        ("ko", "ạ"),
        ("thế", "nào"),
    )
)
_BO: Final = "bo"
_UNITS: Final = _folded_set(
    "hộp", "kg", "ký", "kí", "trái", "quả", "thùng", "túi", "bịch", "chai", "gói", "phần",
    "cân", "con", "cái", "set", "combo",
)  # fmt: skip
_SYMBOL_MARKERS: Final = frozenset("\u00d7*:=")  # the multiplication sign, * : =
_LETTER_MARKERS: Final = re.compile(r"(?:x|sl)+")
_MARKER_PHRASE: Final = ("so", "luong")  # số lượng
# Number words as they must be written: exactly so, or with no diacritics at all (and then
# nam, sau, bay, tam are ordinary words). Keys are NFC, lower case.
_NUMBER_WORDS: Final = {
    unicodedata.normalize("NFC", word): value
    for word, value in (
        ("một", 1), ("hai", 2), ("ba", 3), ("bốn", 4), ("năm", 5), ("sáu", 6), ("bảy", 7),
        ("tám", 8), ("chín", 9), ("mười", 10),
        ("mot", 1), ("bon", 4), ("chin", 9), ("muoi", 10),
    )
}  # fmt: skip
_NUMBER_FOLDS: Final = frozenset(_fold(word) for word in _NUMBER_WORDS)
_TEN: Final = "muoi"
_FIVE_AFTER_TEN: Final = _folded_set("lăm")  # mười lăm = 15
_FIVE_AFTER_TEN_WRITTEN: Final = frozenset({"lăm", "lam"})

_RUN_OR_SIGN: Final = re.compile(r"[^\W_]+|\S")
_CODE_WITH_MARKERS: Final = re.compile(r"([a-z]+[0-9]+)((?:x|sl)+)([0-9]*)([a-z]*)")
_NUMBER_RUN: Final = re.compile(r"((?:x|sl)*)([0-9]+)([a-z]*)")
_VALID_CODE: Final = re.compile(r"[A-Za-z]+[0-9]+")


# --- Tokens -----------------------------------------------------------------------------------

_CODE: Final = 0
_NUMBER: Final = 1
_UNIT: Final = 2
_MARKER: Final = 3
_WORD: Final = 4  # any other word: breaks "directly"
_SIGN: Final = 5  # punctuation, emoji, `+`, ...: breaks "directly"


class _Token(NamedTuple):
    kind: int
    start: int
    end: int
    value: int = 0  # a number's value
    word: str = ""  # the folded word, or the code as spelled in `codes`


class _Scan:
    """Tokens of one comment (whitespace dropped, so neighbours are "directly" next to each
    other) and the keyword facts rule 5 needs."""

    __slots__ = (
        "cancel",
        "folded",
        "has_code",
        "order_word",
        "previous",
        "question_phrase",
        "source",
        "tokens",
    )

    def __init__(self, source: _Source, folded: str) -> None:
        self.source = source
        self.folded = folded
        self.tokens: list[_Token] = []
        self.order_word = False
        self.cancel = False
        self.has_code = False
        self.question_phrase = False
        # The last two whole words directly before the current one, for two-word phrases.
        self.previous: tuple[str, str] = ("", "")

    def after_number(self) -> bool:
        return bool(self.tokens) and self.tokens[-1].kind == _NUMBER

    def glued_before_ok(self, start: int) -> bool:
        """Rule 6: only a marker may be glued before a number."""
        if start == 0:
            return True
        before = self.folded[start - 1]
        return before.isspace() or before in _SYMBOL_MARKERS

    def glued_after_ok(self, end: int) -> bool:
        """Rule 6: a marker (or a unit, checked by the caller) may be glued after a number, and
        so may punctuation that ends it, unless a letter or digit follows that punctuation."""
        folded = self.folded
        if end >= len(folded):
            return True
        after = folded[end]
        if after.isspace() or after in _SYMBOL_MARKERS:
            return True
        return end + 1 >= len(folded) or not folded[end + 1].isalnum()

    def is_unit(self, word: str, start: int, end: int) -> bool:
        """Rule 3: `bó` is a unit; plain `bo` is one directly after a number; every other word
        folding to `bo` is the cancel word `bỏ`."""
        if word != _BO:
            return word in _UNITS
        written = self.source.written(start, end)
        return written == "bó" or (written == "bo" and self.after_number())

    def number_word(self, word: str, start: int, end: int) -> int:
        """Rule 6: the value of a number word, or 0 when it is written with other diacritics."""
        return _NUMBER_WORDS.get(self.source.written(start, end), 0) if word in _NUMBER_FOLDS else 0


@dataclass(frozen=True, slots=True)
class _Matcher:
    """What depends only on the session's codes, built once per set of codes."""

    codes: dict[str, str]  # folded code -> code as spelled in `codes`
    prefilter: re.Pattern[str] | None
    keeps_long_digits: bool

    def blank_numbers(self, folded: str) -> str:
        """Rule 2: mistyped phones and runs of 4+ digits become spaces."""
        if not self.keeps_long_digits:
            return _NOT_A_NUMBER.sub(_spaces, folded)
        return _NOT_A_NUMBER.sub(self._code_digits_kept(folded), folded)

    def _code_digits_kept(self, folded: str) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            start = match.start()
            if match.lastgroup == "run":
                letters = start
                while letters > 0 and "a" <= folded[letters - 1] <= "z":
                    letters -= 1
                if (
                    letters < start
                    and folded[letters : match.end()] in self.codes
                    and (letters == 0 or not folded[letters - 1].isalnum())
                ):
                    return match.group()
            return " " * (match.end() - start)

        return replace


@lru_cache(maxsize=128)
def _matcher(codes: tuple[str, ...]) -> _Matcher:
    folded: dict[str, str] = {}
    for code in codes:
        if not _VALID_CODE.fullmatch(code):
            raise ValueError(f"item code {code!r} is not letters followed by digits")
        if code.lower() in folded:
            raise ValueError(f"item code {code!r} is not unique without regard to case")
        folded[code.lower()] = code
    alternatives = "|".join(sorted(folded, key=len, reverse=True))
    return _Matcher(
        codes=folded,
        prefilter=re.compile(rf"(?<![^\W_])(?:{alternatives})") if folded else None,
        keeps_long_digits=any(
            len(code.lstrip("abcdefghijklmnopqrstuvwxyz")) >= 4 for code in folded
        ),
    )


def _scan(source: _Source, folded: str, codes: dict[str, str]) -> _Scan:
    scan = _Scan(source, folded)
    for match in _RUN_OR_SIGN.finditer(folded):
        text = match.group()
        if text.isalnum():
            _read_word(scan, codes, text, match.start(), match.end())
            continue
        scan.tokens.append(_Token(_MARKER if text in _SYMBOL_MARKERS else _SIGN, *match.span()))
        scan.previous = ("", "")
    return scan


def _read_word(scan: _Scan, codes: dict[str, str], word: str, start: int, end: int) -> None:
    """One maximal run of letters and digits: a code (rule 4), a number with its glued markers
    and unit (rule 6), a marker, a unit, a number word, or a word that may be a keyword."""
    code = codes.get(word)
    if code is not None:
        scan.tokens.append(_Token(_CODE, start, end, word=code))
        scan.has_code = True
    elif word.isalpha() or not (
        _read_code_with_markers(scan, codes, word, start) or _read_number_run(scan, word, start)
    ):
        _read_plain_word(scan, word, start, end)
    _note_keywords(scan, word)


def _read_code_with_markers(scan: _Scan, codes: dict[str, str], word: str, start: int) -> bool:
    """`A1x3`, `A1sl2`, `A1x`: a code may have markers, then a number, glued after it."""
    match = _CODE_WITH_MARKERS.fullmatch(word)
    if match is None:
        return False
    code_text, markers, digits, unit = match.groups()
    code = codes.get(code_text)
    if code is None or (unit and not digits):
        return False
    markers_start = start + len(code_text)
    digits_start = markers_start + len(markers)
    scan.tokens += (
        _Token(_CODE, start, markers_start, word=code),
        _Token(_MARKER, markers_start, digits_start),
    )
    scan.has_code = True
    if digits and not _read_number(scan, digits, unit, digits_start, glued_marker=True):
        scan.tokens.append(_Token(_WORD, digits_start, start + len(word)))
    return True


def _read_number_run(scan: _Scan, word: str, start: int) -> bool:
    """`2`, `x2`, `sl2`, `2kg`, `2x`: a number with the markers and unit it may be glued to."""
    match = _NUMBER_RUN.fullmatch(word)
    if match is None:
        return False
    markers, digits, unit = match.groups()
    digits_start = start + len(markers)
    tokens_before = len(scan.tokens)
    if markers:
        scan.tokens.append(_Token(_MARKER, start, digits_start))
    if _read_number(scan, digits, unit, digits_start, glued_marker=bool(markers)):
        return True
    del scan.tokens[tokens_before:]
    return False


def _read_number(scan: _Scan, digits: str, suffix: str, start: int, *, glued_marker: bool) -> bool:
    """Rule 6: 1 to 3 digits worth 1 to 999, only a marker glued before, only a unit or a
    marker glued after."""
    end = start + len(digits)
    value = int(digits) if len(digits) <= 3 else 0
    if value == 0 or not (glued_marker or scan.glued_before_ok(start)):
        return False
    suffix_end = end + len(suffix)
    if not suffix:
        if not scan.glued_after_ok(end):
            return False
        scan.tokens.append(_Token(_NUMBER, start, end, value))
        return True
    scan.tokens.append(_Token(_NUMBER, start, end, value))
    if _LETTER_MARKERS.fullmatch(suffix):
        scan.tokens.append(_Token(_MARKER, end, suffix_end))
        return True
    if scan.is_unit(suffix, end, suffix_end):
        scan.tokens.append(_Token(_UNIT, end, suffix_end))
        return True
    scan.tokens.pop()
    return False


def _read_plain_word(scan: _Scan, word: str, start: int, end: int) -> None:
    tokens = scan.tokens
    previous = tokens[-1] if tokens else None
    if _LETTER_MARKERS.fullmatch(word):
        tokens.append(_Token(_MARKER, start, end))
    elif scan.is_unit(word, start, end):
        tokens.append(_Token(_UNIT, start, end, word=word))
    elif word == _BO:
        scan.cancel = True
        tokens.append(_Token(_WORD, start, end, word=word))
    elif value := scan.number_word(word, start, end):
        if _is_ten(previous) and value <= 9:
            tokens[-1] = _Token(_NUMBER, previous.start, end, 10 + value)
        else:
            tokens.append(_Token(_NUMBER, start, end, value, word=word))
    elif (
        word in _FIVE_AFTER_TEN
        and _is_ten(previous)
        and scan.source.written(start, end) in _FIVE_AFTER_TEN_WRITTEN
    ):
        tokens[-1] = _Token(_NUMBER, previous.start, end, 15)
    elif (
        previous is not None and previous.kind == _WORD and (previous.word, word) == _MARKER_PHRASE
    ):
        tokens[-1] = _Token(_MARKER, previous.start, end)
    else:
        tokens.append(_Token(_WORD, start, end, word=word))


def _is_ten(token: _Token | None) -> TypeGuard[_Token]:
    return token is not None and token.kind == _NUMBER and token.word == _TEN


def _note_keywords(scan: _Scan, word: str) -> None:
    """Rule 3: order and cancel words, question phrases, and a negation directly before an
    order word unless it is the second word of a question phrase (`còn không chốt được`)."""
    before_previous, previous = scan.previous
    if (previous, word) in _QUESTION_PAIRS:
        scan.question_phrase = True
    if word in _ORDER_WORDS:
        scan.order_word = True
        if previous in _NEGATIONS and not (
            previous in _QUESTION_NEGATIONS and before_previous in _QUESTION_OPENERS
        ):
            scan.cancel = True
    elif word in _CANCEL_WORDS:
        scan.cancel = True
    scan.previous = (previous, word)


def _quantity(tokens: list[_Token], index: int, taken: set[int]) -> int | None:
    """Rule 6: the first of markers-then-number after the code, a free number before it (one
    unit word may stand between), a number after it; None when the comment gives none."""
    after = index + 1
    if after < len(tokens) and tokens[after].kind == _MARKER:
        while after < len(tokens) and tokens[after].kind == _MARKER:
            after += 1
        if after < len(tokens) and tokens[after].kind == _NUMBER and after not in taken:
            taken.add(after)
            return tokens[after].value
    before = index - 1
    if before >= 0 and tokens[before].kind == _UNIT:
        before -= 1
    if before >= 0 and tokens[before].kind == _NUMBER and before not in taken:
        taken.add(before)
        return tokens[before].value
    after = index + 1
    if after < len(tokens) and tokens[after].kind == _NUMBER and after not in taken:
        taken.add(after)
        return tokens[after].value
    return None


def _items(tokens: list[_Token], intent: Intent) -> list[tuple[str, int | None]]:
    """Rule 7: codes in order of first appearance, quantities of repeated codes summed; for a
    cancel, only numbers given explicitly count."""
    totals: dict[str, int | None] = {}
    taken: set[int] = set()
    for index, token in enumerate(tokens):
        if token.kind != _CODE:
            continue
        quantity = _quantity(tokens, index, taken)
        if intent is Intent.ORDER:
            quantity = 1 if quantity is None else quantity
        so_far = totals.get(token.word)
        if quantity is None:
            totals.setdefault(token.word, None)
        else:
            totals[token.word] = quantity if so_far is None else so_far + quantity
    return list(totals.items())


def parse_comment(text: str, codes: Sequence[str]) -> ParsedComment:
    """Read one comment against the session's item codes (letters then digits, unique without
    regard to case); raises ValueError only for codes breaking that, never for any text."""
    matcher = _matcher(tuple(codes))
    if not _ANY_DIGIT.search(text):
        return ParsedComment(Intent.NONE)  # every code and every phone has a digit
    source = _Source(text)
    phone_match = _PHONE.search(source.folded)
    phone = _phone_digits(phone_match.group()) if phone_match else None
    folded = _PHONE.sub(_spaces, source.folded) if phone_match else source.folded
    folded = matcher.blank_numbers(folded)
    if matcher.prefilter is None or not matcher.prefilter.search(folded):
        return ParsedComment(Intent.NONE, phone=phone)
    scan = _scan(source, folded, matcher.codes)
    if not scan.has_code:
        return ParsedComment(Intent.NONE, phone=phone)
    if scan.cancel:
        intent = Intent.CANCEL
    elif ("?" in text or scan.question_phrase) and not scan.order_word:
        return ParsedComment(Intent.NONE, phone=phone)
    else:
        intent = Intent.ORDER
    return ParsedComment(intent, _items(scan.tokens, intent), phone)
