"""The comment parser turns what buyers type in a livestream into orders, cancellations and a
phone number, following the rules of issue 5 one by one."""

from __future__ import annotations

import unicodedata

import pytest

from marketplace.livestreams.comments import (
    Intent,
    ParsedComment,
    find_phones,
    mask_phones,
    parse_comment,
)

CODES = ("A1", "A2", "B1", "B2", "C1", "D2")
FRUIT = ("CAM1", "BUOI2")
ORDER, CANCEL, NONE = Intent.ORDER, Intent.CANCEL, Intent.NONE

Item = tuple[str, int | None]


def case(
    text: str,
    intent: Intent,
    items: list[Item] | None = None,
    phone: str | None = None,
    *,
    id: str,
    codes: tuple[str, ...] = CODES,
) -> object:
    return pytest.param(text, codes, ParsedComment(intent, items or [], phone), id=id)


ISSUE_EXAMPLES = [
    case("Chốt b2 x3 0983 111 222", ORDER, [("B2", 3)], "0983111222", id="issue-chot-b2-x3-phone"),
    case("lay 4 túi C1 va D2 sl 2", ORDER, [("C1", 4), ("D2", 2)], id="issue-unit-then-sl"),
    case("C1 ship được không?", NONE, id="issue-question-without-order-word"),
    case("hủy D2", CANCEL, [("D2", None)], id="issue-cancel-without-number"),
    case("chốt B20", NONE, id="issue-b20-is-not-b2"),
    case("chốt B2 bảy hộp", ORDER, [("B2", 7)], id="issue-number-word-and-unit-after"),
    case("chốt A1 2 B1 1", ORDER, [("A1", 2), ("B1", 1)], id="issue-numbers-after-codes"),
    case("chị Hồng lấy A1", ORDER, [("A1", 1)], id="issue-name-and-order-word"),
    case("chốt A1 012 345 678", ORDER, [("A1", 1)], id="issue-mistyped-phone-dropped"),
    case("A2", ORDER, [("A2", 1)], id="issue-bare-code-is-an-order"),
    case("A1 còn không shop?", NONE, id="issue-con-khong-question"),
    case(
        "chốt A1 ship về Cần Thơ được không?",
        ORDER,
        [("A1", 1)],
        id="issue-question-with-order-word-is-order",
    ),
    case("ko lấy A1 nữa", CANCEL, [("A1", None)], id="issue-negation-before-order-word"),
    case("A1 còn không chốt được", ORDER, [("A1", 1)], id="issue-negation-inside-question"),
    case("chốt A1, A1 x2", ORDER, [("A1", 3)], id="issue-repeated-code-summed"),
    case("A1 x2", ORDER, [("A1", 2)], id="issue-marker-x-glued-to-number"),
    case("A1: 3", ORDER, [("A1", 3)], id="issue-colon-marker"),
    case("CAM1 sl: 2", ORDER, [("CAM1", 2)], codes=FRUIT, id="issue-sl-colon"),
    case("A1 số lượng 10", ORDER, [("A1", 10)], id="issue-so-luong"),
    case("mua 5 A1", ORDER, [("A1", 5)], id="issue-number-before-code"),
    case("lấy 2 hộp A2", ORDER, [("A2", 2)], id="issue-unit-between-number-and-code"),
    case("đặt hai A2", ORDER, [("A2", 2)], id="issue-number-word-before-code"),
    case("cho mình 1 A1 và 2 B1", ORDER, [("A1", 1), ("B1", 2)], id="issue-va-between-items"),
    case("lấy buoi2 3 trái", ORDER, [("BUOI2", 3)], codes=FRUIT, id="issue-number-and-unit-after"),
    case("chốt A1 mười hộp", ORDER, [("A1", 10)], id="issue-muoi-then-unit"),
    case("chốt A1 2kg", ORDER, [("A1", 2)], id="issue-unit-glued-to-number"),
    case("A1x3", ORDER, [("A1", 3)], id="issue-x-glued-both-sides"),
    case("A1*4", ORDER, [("A1", 4)], id="issue-star-glued"),
    case("A1:3", ORDER, [("A1", 3)], id="issue-colon-glued"),
    case("A1=2", ORDER, [("A1", 2)], id="issue-equals-glued"),
    case("A1 x 2", ORDER, [("A1", 2)], id="issue-x-spaced"),
    case("BUOI2 x 12", ORDER, [("BUOI2", 12)], codes=FRUIT, id="issue-two-digit-quantity"),
]

FOLDING = [
    case("CHỐT A1", ORDER, [("A1", 1)], id="upper-case-with-diacritics"),
    case("Chot a1", ORDER, [("A1", 1)], id="no-diacritics-lower-code"),
    case("huỷ A1", CANCEL, [("A1", None)], id="huy-old-tone-placement"),
    case("huy A1", CANCEL, [("A1", None)], id="huy-without-diacritics"),
    case("HỦY A1", CANCEL, [("A1", None)], id="huy-upper-case"),
    case("Đặt A1 x2", ORDER, [("A1", 2)], id="capital-d-with-stroke"),
    case("dat a1 x2", ORDER, [("A1", 2)], id="dat-without-diacritics"),
    case("chot cam1 x2", ORDER, [("CAM1", 2)], codes=FRUIT, id="code-spelled-as-in-codes"),
    case("CAM1 x2", ORDER, [("Cam1", 2)], codes=("Cam1",), id="code-spelling-from-codes-list"),
    case(
        unicodedata.normalize("NFD", "chốt A1 bảy hộp"),
        ORDER,
        [("A1", 7)],
        id="decomposed-input",
    ),
    case("lấy A1 BẢY hộp", ORDER, [("A1", 7)], id="number-word-upper-case"),
    case("A1 SỐ LƯỢNG 3", ORDER, [("A1", 3)], id="so-luong-upper-case"),
]

PHONES = [
    case("chốt A1 0912345678", ORDER, [("A1", 1)], "0912345678", id="phone-plain"),
    case("A1 x2 sdt 0912.345.678", ORDER, [("A1", 2)], "0912345678", id="phone-dots"),
    case("A1 0912-345-678", ORDER, [("A1", 1)], "0912345678", id="phone-dashes"),
    case("A1 0912 345 678", ORDER, [("A1", 1)], "0912345678", id="phone-spaces-no-quantity"),
    case("A1 0912 345.678", ORDER, [("A1", 1)], "0912345678", id="phone-mixed-separators"),
    case("A1 0 9 1 2 3 4 5 6 7 8", ORDER, [("A1", 1)], "0912345678", id="phone-every-gap"),
    case("A1 +84 912 345 678", ORDER, [("A1", 1)], "0912345678", id="phone-plus84-spaced"),
    case("A1 +84912345678", ORDER, [("A1", 1)], "0912345678", id="phone-plus84-glued"),
    case("A1 84 912 345 678", ORDER, [("A1", 1)], "0912345678", id="phone-84-spaced"),
    case("A1 84-912-345-678", ORDER, [("A1", 1)], "0912345678", id="phone-84-dashes"),
    case("A1 84.912345678", ORDER, [("A1", 1)], "0912345678", id="phone-84-dot"),
    case("A1 0386 123 456", ORDER, [("A1", 1)], "0386123456", id="phone-03-viettel"),
    case("A1 0567 123 456", ORDER, [("A1", 1)], "0567123456", id="phone-05"),
    case("A1 0707 123 456", ORDER, [("A1", 1)], "0707123456", id="phone-07"),
    case("A1 0812 123 456", ORDER, [("A1", 1)], "0812123456", id="phone-08"),
    case(
        "A1 0912345678 hoặc 0987654321",
        ORDER,
        [("A1", 1)],
        "0912345678",
        id="first-phone-returned",
    ),
    case("sđt0912345678 chốt A1", ORDER, [("A1", 1)], "0912345678", id="phone-glued-to-letters"),
    case("0912345678", NONE, phone="0912345678", id="phone-without-code"),
    case("hủy A1 sdt 0912345678", CANCEL, [("A1", None)], "0912345678", id="phone-on-cancel"),
    case("A1 còn ko 0912345678?", NONE, phone="0912345678", id="phone-on-question"),
    case("0912345678A1 x2", ORDER, [("A1", 2)], "0912345678", id="phone-glued-before-code"),
    case("A1 2 0912345678", ORDER, [("A1", 2)], "0912345678", id="quantity-before-phone"),
    case("A1 10912345678", ORDER, [("A1", 1)], id="glued-digit-before-rejected"),
    case("A1 09123456789", ORDER, [("A1", 1)], id="glued-digit-after-rejected"),
    case("chốt A1 x2 0912  345 678", ORDER, [("A1", 2)], id="two-spaces-break-a-phone"),
    case("A1 0612345678", ORDER, [("A1", 1)], id="prefix-06-is-not-mobile"),
    case("A1 012345678", ORDER, [("A1", 1)], id="mistyped-nine-digits"),
    case("A1 0112345678", ORDER, [("A1", 1)], id="mistyped-wrong-prefix"),
    case("A1 84 12 345 678", ORDER, [("A1", 1)], id="mistyped-84"),
    case("A1 2 012 345 678", ORDER, [("A1", 2)], id="quantity-kept-before-mistyped-phone"),
    case("A1 giá 150000", ORDER, [("A1", 1)], id="long-run-is-not-quantity"),
    case("A1 1500", ORDER, [("A1", 1)], id="four-digits-removed"),
    case("A1 x1000", ORDER, [("A1", 1)], id="four-digits-after-marker-removed"),
]

KEYWORDS = [
    case("chuyển A1 qua B1", ORDER, [("A1", 1), ("B1", 1)], id="huy-not-inside-chuyen"),
    case("Huyền lấy A1", ORDER, [("A1", 1)], id="huy-not-inside-huyen"),
    case("gửi bao A1", ORDER, [("A1", 1)], id="ba-not-inside-bao"),
    case("mua A1 x2", ORDER, [("A1", 2)], id="mua"),
    case("order A1 x2", ORDER, [("A1", 2)], id="order-in-english"),
    case("cancel A1", CANCEL, [("A1", None)], id="cancel-in-english"),
    case("CANCEL A1 x2", CANCEL, [("A1", 2)], id="cancel-with-explicit-quantity"),
    case("bỏ A1", CANCEL, [("A1", None)], id="bo-with-hook-cancels"),
    case("bo A1", CANCEL, [("A1", None)], id="plain-bo-not-after-number-cancels"),
    case("A1 bo", CANCEL, [("A1", None)], id="plain-bo-after-code-cancels"),
    case("A1 2 bo", ORDER, [("A1", 2)], id="plain-bo-after-number-is-unit"),
    case("lấy 2 bo A1", ORDER, [("A1", 2)], id="plain-bo-unit-between"),
    case("hai bo A1", ORDER, [("A1", 2)], id="plain-bo-after-number-word"),
    case("2bo A1", ORDER, [("A1", 2)], id="plain-bo-glued-to-number"),
    case("A1 bó", ORDER, [("A1", 1)], id="bo-with-acute-is-unit"),
    case("lấy 3 bó A1", ORDER, [("A1", 3)], id="bo-with-acute-unit-between"),
    case("bỏ A1 2", CANCEL, [("A1", 2)], id="bo-cancel-with-quantity"),
    case("không lấy A1 nữa", CANCEL, [("A1", None)], id="khong-lay"),
    case("k chốt A1 nha", CANCEL, [("A1", None)], id="k-chot"),
    case("ko mua A2 đâu", CANCEL, [("A2", None)], id="ko-mua"),
    case("khong dat B1", CANCEL, [("B1", None)], id="khong-dat-no-diacritics"),
    case("ko order A1", CANCEL, [("A1", None)], id="ko-order"),
    case("ko, lấy A1", ORDER, [("A1", 1)], id="comma-breaks-negation"),
    case("kho lấy A1", ORDER, [("A1", 1)], id="kho-is-not-negation"),
    case("A1 còn ko chốt được", ORDER, [("A1", 1)], id="con-ko-question-not-cancel"),
    case("A1 ship được ko chốt liền", ORDER, [("A1", 1)], id="duoc-ko-question-not-cancel"),
    case("chốt A1 hủy B1", CANCEL, [("A1", None), ("B1", None)], id="cancel-wins-for-all-codes"),
    case("hủy A1 được không?", CANCEL, [("A1", None)], id="cancel-even-in-question"),
    case("hủy đơn nha shop", NONE, id="cancel-without-code"),
]

QUESTIONS = [
    case("A1 bao nhiêu tiền", NONE, id="bao-nhieu"),
    case("A1 bao nhieu", NONE, id="bao-nhieu-no-diacritics"),
    case("A1 giá thế nào", NONE, id="the-nao"),
    case("A1 còn ko", NONE, id="con-ko"),
    case("A1 ship được ko", NONE, id="duoc-ko"),
    case("A1 còn hàng không ạ", NONE, id="khong-a"),
    case("A1 ko ạ", NONE, id="ko-a"),
    case("A1?", NONE, id="question-mark-glued"),
    case("A1 2?", NONE, id="question-mark-after-number"),
    case("chốt A1 được không?", ORDER, [("A1", 1)], id="question-with-chot"),
    case(
        "Chốt A1 x2 nha, bao nhiêu tiền ship?",
        ORDER,
        [("A1", 2)],
        id="question-about-shipping-with-order",
    ),
    case("lay A1 duoc khong", ORDER, [("A1", 1)], id="question-with-lay-no-diacritics"),
]

QUANTITIES = [
    case("A1 X2", ORDER, [("A1", 2)], id="capital-x"),
    case("A1 \u00d72", ORDER, [("A1", 2)], id="multiplication-sign"),
    case("A1 \u00d7 2", ORDER, [("A1", 2)], id="multiplication-sign-spaced"),
    case("A1 * 2", ORDER, [("A1", 2)], id="star-spaced"),
    case("A1 = 2", ORDER, [("A1", 2)], id="equals-spaced"),
    case("A1 : 2", ORDER, [("A1", 2)], id="colon-spaced"),
    case("A1 sl 2", ORDER, [("A1", 2)], id="sl-spaced"),
    case("A1 SL:2", ORDER, [("A1", 2)], id="sl-colon-glued"),
    case("A1sl2", ORDER, [("A1", 2)], id="sl-glued-both-sides"),
    case("A1 sl=2", ORDER, [("A1", 2)], id="two-markers-glued"),
    case("A1 x: 2", ORDER, [("A1", 2)], id="two-markers-spaced"),
    case("A1 so luong: 3", ORDER, [("A1", 3)], id="so-luong-no-diacritics"),
    case("A1 sl hai", ORDER, [("A1", 2)], id="marker-then-number-word"),
    case("A1x", ORDER, [("A1", 1)], id="marker-without-number"),
    case("A1x 4", ORDER, [("A1", 4)], id="glued-marker-then-spaced-number"),
    case("A1 x2kg", ORDER, [("A1", 2)], id="marker-number-unit"),
    case("2kg A1", ORDER, [("A1", 2)], id="glued-unit-before-code"),
    case("2 ký A1", ORDER, [("A1", 2)], id="unit-ky"),
    case("hai hộp A1", ORDER, [("A1", 2)], id="number-word-unit-code"),
    case("2 hộp to A1", ORDER, [("A1", 1)], id="two-words-between-break-it"),
    case("3 thùng A2", ORDER, [("A2", 3)], id="unit-thung"),
    case("lấy 4 trái C1", ORDER, [("C1", 4)], id="unit-trai"),
    case("A1 2 quả", ORDER, [("A1", 2)], id="unit-qua-after"),
    case("A1 2k", ORDER, [("A1", 1)], id="2k-is-not-a-number"),
    case("A1 giá 20k", ORDER, [("A1", 1)], id="price-in-k"),
    case("A1 2.5kg", ORDER, [("A1", 1)], id="decimal-is-not-a-number"),
    case("A1 2,5kg", ORDER, [("A1", 1)], id="decimal-comma-is-not-a-number"),
    case("A1 0", ORDER, [("A1", 1)], id="zero-is-not-a-quantity"),
    case("A1 x0", ORDER, [("A1", 1)], id="zero-after-marker"),
    case("A1 999", ORDER, [("A1", 999)], id="largest-quantity"),
    case("A1 x05", ORDER, [("A1", 5)], id="leading-zero"),
    case("A1 -2", ORDER, [("A1", 1)], id="dash-glued-before-number"),
    case("A1 +2", ORDER, [("A1", 1)], id="plus-glued-before-number"),
    case("A1 + 2", ORDER, [("A1", 1)], id="plus-breaks-directly"),
    case("A1 x2, B1 x3", ORDER, [("A1", 2), ("B1", 3)], id="comma-after-number"),
    case("chốt A1 2.", ORDER, [("A1", 2)], id="full-stop-after-number"),
    case("A1 2, B1 1", ORDER, [("A1", 2), ("B1", 1)], id="comma-list"),
    case("1 A1 với 2 B1", ORDER, [("A1", 1), ("B1", 2)], id="voi-between-items"),
    case("A1 2 + B1 3", ORDER, [("A1", 2), ("B1", 3)], id="plus-between-items"),
    case("A1 2 B1", ORDER, [("A1", 2), ("B1", 1)], id="taken-number-not-reused"),
    case("mua 5 A1 3 B1", ORDER, [("A1", 5), ("B1", 3)], id="numbers-before-codes"),
    case("A1 x2 B1", ORDER, [("A1", 2), ("B1", 1)], id="marker-number-taken"),
    case("2 A1 B1 3", ORDER, [("A1", 2), ("B1", 3)], id="before-then-after"),
    case("A1 B1 2", ORDER, [("A1", 1), ("B1", 2)], id="code-between-breaks-it"),
    case("A1 x2 A1 x3", ORDER, [("A1", 5)], id="sum-with-markers"),
    case("A1, A1, A1", ORDER, [("A1", 3)], id="sum-bare-codes"),
    case("B1 x1 A1 2 b1 3", ORDER, [("B1", 4), ("A1", 2)], id="first-appearance-order"),
    case("hủy A1 2, A1", CANCEL, [("A1", 2)], id="cancel-sums-explicit-only"),
    case("hủy A1, A1", CANCEL, [("A1", None)], id="cancel-none-when-no-number"),
    case("hủy A1 x2 B1", CANCEL, [("A1", 2), ("B1", None)], id="cancel-mixed"),
    case("chốt A1 Z9", ORDER, [("A1", 1)], id="unknown-code-ignored"),
    case("chốt Z9 x2", NONE, id="only-unknown-code"),
    case("chốt SP1001 x2", ORDER, [("SP1001", 2)], codes=("SP1001",), id="code-with-four-digits"),
]

NUMBER_WORDS = [
    case("một A1", ORDER, [("A1", 1)], id="mot"),
    case("hai A1", ORDER, [("A1", 2)], id="hai"),
    case("ba A1", ORDER, [("A1", 3)], id="ba"),
    case("bốn A1", ORDER, [("A1", 4)], id="bon"),
    case("năm A1", ORDER, [("A1", 5)], id="nam-with-breve"),
    case("sáu A1", ORDER, [("A1", 6)], id="sau-with-acute"),
    case("bảy A1", ORDER, [("A1", 7)], id="bay-with-hook"),
    case("tám A1", ORDER, [("A1", 8)], id="tam-with-acute"),
    case("chín A1", ORDER, [("A1", 9)], id="chin-with-acute"),
    case("mười A1", ORDER, [("A1", 10)], id="muoi-with-diacritics"),
    case("mot A1", ORDER, [("A1", 1)], id="mot-plain"),
    case("bon A1", ORDER, [("A1", 4)], id="bon-plain"),
    case("chin A1", ORDER, [("A1", 9)], id="chin-plain"),
    case("muoi A1", ORDER, [("A1", 10)], id="muoi-plain"),
    case("nam A1", ORDER, [("A1", 1)], id="nam-plain-is-a-word"),
    case("sau A1", ORDER, [("A1", 1)], id="sau-plain-is-a-word"),
    case("chốt A1 bay", ORDER, [("A1", 1)], id="bay-plain-is-a-word"),
    case("tam A1", ORDER, [("A1", 1)], id="tam-plain-is-a-word"),
    case("bà A1", ORDER, [("A1", 1)], id="ba-with-grave-is-not-three"),
    case("muối A1", ORDER, [("A1", 1)], id="muoi-salt-is-not-ten"),
    case("mốt A1", ORDER, [("A1", 1)], id="mot-with-acute-is-not-one"),
    case("HAI A1", ORDER, [("A1", 2)], id="number-word-capitals"),
    case("mười hai A1", ORDER, [("A1", 12)], id="compound-muoi-hai"),
    case("muoi hai A1", ORDER, [("A1", 12)], id="compound-without-diacritics"),
    case("A1 mười lăm", ORDER, [("A1", 15)], id="compound-muoi-lam"),
    case("A1 mười năm hộp", ORDER, [("A1", 15)], id="compound-muoi-nam-then-unit"),
    case("A1 muoi nam", ORDER, [("A1", 10)], id="compound-needs-a-number-word"),
    case("A1 mười, hai B1", ORDER, [("A1", 10), ("B1", 2)], id="comma-breaks-compound"),
]

CODE_TOKENS = [
    case("A10", NONE, id="a10-is-not-a1"),
    case("chốt cam", NONE, codes=FRUIT, id="cam-is-not-cam1"),
    case("A1a", NONE, id="letter-glued-after"),
    case("1A1", NONE, id="digit-glued-before"),
    case("xA1", NONE, id="marker-glued-before-is-not-allowed"),
    case("A1xyz", NONE, id="word-glued-after"),
    case("A1slot", NONE, id="sl-inside-a-word"),
    case("#A1 x2", ORDER, [("A1", 2)], id="hash-before-code"),
    case("(A1)", ORDER, [("A1", 1)], id="parentheses"),
    case("A1.", ORDER, [("A1", 1)], id="full-stop-after-code"),
    case("😀A1x2😀", ORDER, [("A1", 2)], id="emoji-around"),
]

# Where folding (rule 1) makes other words into keywords: the issue's reading, pinned here so
# that a change of rule is a visible decision.
FOLDING_CONSEQUENCES = [
    case("bố mình lấy A1", CANCEL, [("A1", None)], id="bo-father-folds-to-cancel-word"),
    case("A1 2 bộ", CANCEL, [("A1", 2)], id="bo-set-is-not-the-unit-bo"),
    case("anh Huy lấy A1", CANCEL, [("A1", None)], id="name-huy-folds-to-cancel-word"),
    case("A1 mùa này còn không", ORDER, [("A1", 1)], id="mua-season-folds-to-order-word"),
    case("còn k chốt A1 được", CANCEL, [("A1", None)], id="con-k-is-not-a-question-phrase"),
    case("2 x A1", ORDER, [("A1", 1)], id="number-then-marker-then-code-is-not-a-rule"),
]

BAD_INPUT = [
    case("", NONE, id="empty"),
    case("   \n\t ", NONE, id="only-whitespace"),
    case("😀😀🔥", NONE, id="only-emoji"),
    case("\x00\x01 A1", ORDER, [("A1", 1)], id="control-characters-before"),
    case("A1\x00x2", ORDER, [("A1", 1)], id="control-character-breaks-marker"),
    case("chốt\tA1\nx2", ORDER, [("A1", 2)], id="tab-and-newline-are-whitespace"),
    case("Привет A1 x2 谢谢", ORDER, [("A1", 2)], id="mixed-scripts"),
    case("A1 \uff12", ORDER, [("A1", 1)], id="fullwidth-digit-is-not-ascii"),
    case("A1 x٣", ORDER, [("A1", 1)], id="arabic-indic-digit"),
    case("A1\u200bx2", ORDER, [("A1", 1)], id="zero-width-space-breaks"),
    case("\ud800 A1", ORDER, [("A1", 1)], id="lone-surrogate"),
    case("chốt A1 x2 " + "đẹp quá " * 700, ORDER, [("A1", 2)], id="five-thousand-characters"),
    case("A" * 5000, NONE, id="five-thousand-letters"),
    case("1" * 5000, NONE, id="five-thousand-digits"),
    case("A1 " * 1500, ORDER, [("A1", 1500)], id="code-repeated-1500-times"),
    case("chốt A1 x2", NONE, codes=(), id="no-codes-in-session"),
]

CASES = (
    ISSUE_EXAMPLES
    + FOLDING
    + PHONES
    + KEYWORDS
    + QUESTIONS
    + QUANTITIES
    + NUMBER_WORDS
    + CODE_TOKENS
    + FOLDING_CONSEQUENCES
    + BAD_INPUT
)


@pytest.mark.parametrize(("text", "codes", "expected"), CASES)
def test_comment_is_read_as_the_rules_say(
    text: str, codes: tuple[str, ...], expected: ParsedComment
) -> None:
    assert parse_comment(text, codes) == expected


def test_there_are_at_least_120_parser_cases() -> None:
    assert len(CASES) >= 120


def test_codes_may_be_passed_as_any_sequence() -> None:
    assert parse_comment("chốt A1 x2", ["A1", "B1"]) == parse_comment("chốt A1 x2", ("B1", "A1"))


@pytest.mark.parametrize(
    "codes",
    [
        pytest.param(["A1", "a1"], id="same-code-other-case"),
        pytest.param(["1A"], id="digits-first"),
        pytest.param(["CAM"], id="no-digits"),
        pytest.param(["A-1"], id="punctuation"),
        pytest.param(["Ă1"], id="not-ascii"),
    ],
)
def test_codes_breaking_the_session_rules_are_refused(codes: list[str]) -> None:
    with pytest.raises(ValueError, match="item code"):
        parse_comment("chốt A1", codes)


@pytest.mark.parametrize(
    ("text", "phones"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("0912345678", ["0912345678"], id="plain"),
        pytest.param("+84 912 345 678 và 0987.654.321", ["0912345678", "0987654321"], id="two"),
        pytest.param("012 345 678", [], id="mistyped"),
        pytest.param("10912345678", [], id="glued-digit"),
    ],
)
def test_find_phones_returns_every_phone_in_order(text: str, phones: list[str]) -> None:
    assert find_phones(text) == phones


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("chốt A1 x2 0912345678", "chốt A1 x2 0912***678", id="plain-phone"),
        pytest.param("Chốt A1 sđt 0912.345.678 nhé", "Chốt A1 sđt 0912***678 nhé", id="dots"),
        pytest.param("gọi +84 912 345 678!", "gọi 0912***678!", id="plus84"),
        pytest.param("0912345678 hoặc 0987-654-321", "0912***678 hoặc 0987***321", id="two-phones"),
        pytest.param("sdt 012 345 678 nha", "sdt 0123***678 nha", id="mistyped-phone-masked"),
        pytest.param("A1 84-912.345 678", "A1 0912***678", id="mixed-separators"),
        pytest.param("A1 09123456789", "A1 0912***789", id="glued-digits-masked-as-mistyped"),
        pytest.param(
            "0912345084 912 345 6",
            "0912***0849***456",
            id="digits-left-visible-cannot-start-a-new-phone",
        ),
        pytest.param("A1 x2 giá 150000", "A1 x2 giá 150000", id="price-left-alone"),
        pytest.param("Đẹp quá shop ơi", "Đẹp quá shop ơi", id="no-digits"),
        pytest.param(
            unicodedata.normalize("NFD", "chị Hồng 0912345678 ạ"),
            unicodedata.normalize("NFD", "chị Hồng ") + "0912***678" + " a\u0323",
            id="decomposed-text-kept-around-phone",
        ),
    ],
)
def test_public_feed_masks_every_phone(text: str, shown: str) -> None:
    assert mask_phones(text) == shown


def test_masked_text_gives_no_phone_away() -> None:
    masked = mask_phones("A1 x2 0912345678, +84 987 654 321, 012 345 678")

    assert find_phones(masked) == []
    assert parse_comment(masked, CODES).phone is None
