"""Reading the CSV files admins upload (bank statements, carriers' remittance reports)."""

from __future__ import annotations

import csv
import io

from marketplace.payments.errors import BadUpload

MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def csv_rows(content: bytes, columns: tuple[str, ...]) -> csv.DictReader[str]:
    """Rows as dicts keyed by the lower-cased header; a file without the `columns` (or not
    UTF-8, holding a NUL, or too large) is refused whole. Excel's byte-order mark is
    tolerated."""
    if len(content) > MAX_UPLOAD_BYTES:
        raise BadUpload(f"at most {MAX_UPLOAD_BYTES} bytes")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadUpload("the file must be UTF-8 text") from None
    if "\x00" in text:
        # PostgreSQL text cannot hold it: refused whole, like a file that is not UTF-8.
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise BadUpload(f"line {line} contains a NUL character, which cannot be stored")
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    missing = [column for column in columns if column not in header]
    if missing:
        raise BadUpload("the header must name the columns: " + ", ".join(missing))
    reader.fieldnames = header
    return reader
