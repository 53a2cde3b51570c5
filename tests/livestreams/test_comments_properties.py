"""Properties the comment parser keeps for any text: it never raises, a phone never turns into
a quantity, and case, diacritics outside number words, and filler words change nothing."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from marketplace.livestreams.comments import (
    Intent,
    find_phones,
    mask_phones,
    parse_comment,
)

CODE_SETS = (
    ("A1", "A2", "B1", "B2", "C1", "D2"),
    ("CAM1", "BUOI2", "quyt3"),
    ("SP1001", "X1"),
    (),
)
CODES = CODE_SETS[0]

# Words a buyer types in a livestream: keywords, codes, numbers, units, markers, question
# words, number words, and chatter, in several spellings.
VOCABULARY = (
    "chốt", "chot", "CHỐT", "lấy", "lay", "đặt", "dat", "mua", "order", "hủy", "huỷ", "huy",
    "cancel", "bỏ", "bo", "bó", "không", "khong", "ko", "k", "còn", "con", "được", "duoc",
    "bao", "nhiêu", "nhieu", "ạ", "thế", "nào", "A1", "a1", "A2", "B1", "b2", "C1", "D2",
    "A10", "B20", "Z9", "CAM1", "buoi2", "A1x2", "A1*3", "A1:2", "A1=4", "A1sl2", "B1x",
    "x", "\u00d7", "*", ":", "=", "sl", "số", "lượng", "1", "2", "3", "5", "12", "99", "999",
    "2kg", "3hộp", "0", "x2", "x 3", "2k", "2.5", "một", "hai", "ba", "bốn", "năm", "nam",
    "sáu", "bảy", "bay", "tám", "chín", "mười", "muoi", "lăm", "bà", "muối", "mốt", "hộp",
    "kg", "ký", "trái", "quả", "thùng", "túi", "bịch", "chai", "gói", "phần", "cân", "cái",
    "set", "combo", "và", "với", "+", ",", ".", "?", "!", "shop", "ơi", "đẹp", "quá", "nha",
    "chị", "Hồng", "em", "ship", "về", "Cần", "Thơ", "nữa", "😀", "🔥",
)  # fmt: skip
# Chatter that carries no digit, code or keyword, to add at either end of a comment.
FILLER = (
    "shop", "ơi", "đẹp", "quá", "nha", "nhé", "chị", "Hồng", "em", "ơi", "xinh", "ship", "về",
    "Cần", "Thơ", "hàng", "tươi", "ngon", "live", "hay", "thương", "Lan", "Tuấn", "hộp",
    "kg", "trái", "😀", "❤️", "!!", "...",
)  # fmt: skip
VIETNAMESE_LETTERS = (
    "aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
)
# Folded words that are keywords, parts of keyword phrases, markers or numbers.
NOT_FILLER = frozenset({
    "chot", "lay", "dat", "mua", "order", "huy", "cancel", "bo", "khong", "ko", "k", "con",
    "duoc", "bao", "nhieu", "a", "the", "nao", "x", "sl", "so", "luong", "mot", "hai", "ba",
    "bon", "nam", "sau", "bay", "tam", "chin", "muoi", "lam",
})  # fmt: skip


def fold(text: str) -> str:
    return strip_diacritics(text).lower()


def strip_diacritics(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith("M"))
    return bare.replace("đ", "d").replace("Đ", "D")


def is_filler(word: str) -> bool:
    folded = fold(word)
    return (
        not any(ch.isdigit() for ch in folded)
        and not re.fullmatch(r"(?:x|sl)+", folded)
        and not set(re.findall(r"[^\W_]+", folded)) & NOT_FILLER
        and "?" not in word
    )


# Whole phrases, so that numbers, units, markers and keywords meet codes often enough.
PHRASES = (
    "chốt A1 x2", "lấy 2 hộp B1", "2 hộp A1", "đặt hai C1", "A1 2 bo", "hai bó D2",
    "mười hai A2", "A1 mười lăm", "B2 bảy hộp", "ko lấy", "không chốt", "còn không",
    "được ko", "bao nhiêu", "không ạ", "thế nào", "số lượng 3", "sl: 2", "A1 2 B1 1",
    "mua 5 A1 3 B1", "A1, A1 x2", "hủy B1", "bỏ A2", "4 túi C1 và D2", "1 A1 với 2 B1",
    "A1 còn không", "C1 ship được không?", "B1 bao nhiêu", "D2 ko ạ", "A1 2kg", "3 trái C1",
    "2 ký A2", "bà A1", "A1 nam", "A1 x 2", "A1 \u00d7 3",
)  # fmt: skip
random_words = st.text(VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper(), min_size=1, max_size=7)
# Phrases twice as likely as single words, and short comments, so that most name a code and
# the rules meet each other often.
words = st.lists(
    st.one_of(
        st.sampled_from(VOCABULARY),
        st.sampled_from(PHRASES),
        st.sampled_from(PHRASES),
        random_words,
    ),
    max_size=5,
)
separators = st.sampled_from([" ", "  ", ", ", "\n", "\t"])
fillers = st.lists(st.sampled_from(FILLER) | random_words.filter(is_filler), min_size=1, max_size=4)


@st.composite
def comments(draw: st.DrawFn) -> str:
    """Realistic comments: words and phrases a buyer types, separated by whitespace or commas."""
    chosen = draw(words)
    return "".join(word + draw(separators) for word in chosen).strip()


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str]:
    """A phone as typed (spaces, dots, dashes, +84, 84) and as the parser must return it."""
    digits = draw(st.sampled_from("35789")) + draw(st.text("0123456789", min_size=8, max_size=8))
    gaps = [draw(st.sampled_from(["", "", " ", ".", "-"])) for _ in digits]
    body = "".join(gap + digit for gap, digit in zip(gaps, digits, strict=True)).lstrip(" .-")
    prefix = draw(st.sampled_from(["0", "+84", "84", "+84 ", "84.", "0 ", "84-"]))
    return prefix + body, "0" + digits


long_texts = st.text(max_size=60).map(lambda chunk: (chunk or "A1 x2 ") * (5000 // 6))


@settings(max_examples=300)
@given(text=st.text(max_size=300) | comments() | long_texts, codes=st.sampled_from(CODE_SETS))
def test_any_text_is_read_without_raising(text: str, codes: tuple[str, ...]) -> None:
    parsed = parse_comment(text, codes)

    assert parsed.intent in set(Intent)
    assert all(code in codes for code, _ in parsed.items)
    assert (parsed.intent is Intent.NONE) == (not parsed.items)
    for _, quantity in parsed.items:
        if quantity is None:
            assert parsed.intent is Intent.CANCEL
        else:
            assert quantity >= 1
    assert parsed.phone is None or re.fullmatch(r"0[35789][0-9]{8}", parsed.phone)


# Digit groups joined by single separators: phones, mistyped phones and near misses that run
# into each other.
digit_soup = st.lists(
    st.text("0123456789", min_size=1, max_size=4) | st.sampled_from(["09", "84", "+84", "03"]),
    max_size=12,
).flatmap(
    lambda groups: st.tuples(*(st.sampled_from(" .-,x") for _ in groups)).map(
        lambda seps: "".join(group + sep for group, sep in zip(groups, seps, strict=True))
    )
)


@settings(max_examples=300)
@given(text=st.text(max_size=300) | comments() | digit_soup)
@example(text="0912345084 912 345 6")  # the digits left visible once began a new phone
def test_masked_phones_cannot_be_read_back(text: str) -> None:
    assert find_phones(mask_phones(text)) == []


@settings(max_examples=300)
@given(before=comments(), after=comments(), phone=phones())
def test_a_phone_never_becomes_a_quantity(before: str, after: str, phone: tuple[str, str]) -> None:
    typed, returned = phone
    # Two spaces: a phone's digit chain can never run on into a neighbouring number.
    with_phone = parse_comment(f"{before}  {typed}  {after}", CODES)
    without_phone = parse_comment(f"{before}  {after}", CODES)

    assert with_phone.phone == returned
    assert (with_phone.intent, with_phone.items) == (without_phone.intent, without_phone.items)


@settings(max_examples=300)
@given(text=comments())
def test_case_changes_nothing(text: str) -> None:
    parsed = parse_comment(text, CODES)

    assert parse_comment(text.upper(), CODES) == parsed
    assert parse_comment(text.lower(), CODES) == parsed
    assert parse_comment(text.swapcase(), CODES) == parsed


# Words whose diacritics carry meaning: number words (and `lăm` after `mười`), and `bó`.
DIACRITIC_SENSITIVE = frozenset(
    {"mot", "hai", "ba", "bon", "nam", "sau", "bay", "tam", "chin", "muoi", "lam", "bo"}
)


def strip_outside_number_words(text: str) -> str:
    def strip(match: re.Match[str]) -> str:
        word = match.group()
        return word if fold(word) in DIACRITIC_SENSITIVE else strip_diacritics(word)

    return re.sub(r"[^\W_]+", strip, unicodedata.normalize("NFC", text))


@settings(max_examples=300)
@given(text=comments())
def test_diacritics_outside_number_words_change_nothing(text: str) -> None:
    assert parse_comment(strip_outside_number_words(text), CODES) == parse_comment(text, CODES)


@settings(max_examples=300)
@given(text=st.one_of(comments(), comments(), st.text(max_size=200)), head=fillers, tail=fillers)
def test_filler_words_at_either_end_change_nothing(
    text: str, head: list[str], tail: list[str]
) -> None:
    padded = " ".join([*head, text, *tail])

    assert parse_comment(padded, CODES) == parse_comment(text, CODES)
