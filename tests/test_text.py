"""Folding lets "can tho" find "Cần Thơ": marks, đ, case and spacing must all fold away."""

from __future__ import annotations

import unicodedata
from typing import Literal

import pytest

from marketplace.text import fold


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        pytest.param("Cần Thơ", "can tho", id="tone-and-horn-marks"),
        pytest.param("Thành phố Cần Thơ", "thanh pho can tho", id="province-full-name"),
        pytest.param("Phường Ninh Kiều", "phuong ninh kieu", id="commune-name"),
        pytest.param("Đặc khu Côn Đảo", "dac khu con dao", id="capital-d-with-stroke"),
        pytest.param("đường", "duong", id="small-d-with-stroke"),
        pytest.param("QUÝT HƯƠNG CẦN", "quyt huong can", id="upper-case"),
        pytest.param("Bưởi   da\txanh\n", "buoi da xanh", id="whitespace-runs-and-ends"),
        pytest.param("  ", "", id="only-whitespace"),
        pytest.param("ổi VietGAP", "oi vietgap", id="mixed-vietnamese-and-ascii"),
        pytest.param("A1 chốt đơn 2", "a1 chot don 2", id="digits-kept"),
        pytest.param("Văn Miếu - Quốc Tử Giám", "van mieu - quoc tu giam", id="punctuation-kept"),
    ],
)
def test_fold_removes_marks_stroke_case_and_extra_spaces(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(
    "form",
    [
        pytest.param("NFC", id="precomposed"),
        pytest.param("NFD", id="combining-marks"),
        pytest.param("NFKC", id="compatibility-composed"),
    ],
)
def test_fold_gives_the_same_text_whatever_the_unicode_form(
    form: Literal["NFC", "NFD", "NFKC"],
) -> None:
    text = unicodedata.normalize(form, "Hồ Chí Minh Đồng Tháp Khánh Hòa")
    assert fold(text) == "ho chi minh dong thap khanh hoa"


def test_fold_accepts_marks_typed_in_an_unusual_order() -> None:
    # ệ typed as e + dot below + circumflex, or e + circumflex + dot below: both are ệ.
    assert fold("Vie\u0323\u0302t") == fold("Vie\u0302\u0323t") == "viet"


def test_fold_is_idempotent_on_its_own_output() -> None:
    once = fold("Thành phố Hồ Chí Minh")
    assert fold(once) == once
