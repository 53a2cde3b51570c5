"""Vietnamese text folding, shared by every search that must ignore diacritics and case.

Buyers type "can tho", "Cần Thơ" or "CAN THO" and mean the same place; comments in a
livestream arrive with or without diacritics. Search compares folded text on both sides,
so the stored folded columns and the folded query must come from this one function.
Pure: no database, no settings (the embedded PostgreSQL has no `unaccent`, so folding
happens here rather than in SQL).
"""

from __future__ import annotations

import unicodedata

# đ/Đ is a letter of its own, not d plus a mark, so NFD leaves it whole.
_D_WITH_STROKE = str.maketrans({"đ": "d", "Đ": "d"})


def fold(text: str) -> str:
    """Lower-case ASCII-like form: marks dropped, đ -> d, runs of whitespace -> one space."""
    # Lower-case before decomposing: some capitals (İ) lower-case into a letter plus a mark.
    decomposed = unicodedata.normalize("NFD", text.translate(_D_WITH_STROKE).lower())
    unmarked = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(unmarked.split())
