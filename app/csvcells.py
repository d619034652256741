"""Spreadsheet-safe CSV cells (CSV/formula injection, OWASP)."""

from __future__ import annotations

import csv
import io

# A cell starting with one of these is a formula (or becomes one once a spreadsheet strips
# the leading tab/CR) in Excel, LibreOffice and Google Sheets; full-width forms included.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value):
    """OWASP's advice: a text cell that could start a formula gets a leading `'`, which
    spreadsheets show as text and do not evaluate. Numbers and empty cells pass as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class SafeCSV:
    """csv.writer into a buffer that quotes every cell and neutralises formulas;
    `take()` hands back what was written so far (for streaming)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, quoting=csv.QUOTE_ALL)

    def row(self, cells) -> None:
        self._writer.writerow([safe_cell(c) for c in cells])

    def take(self) -> bytes:
        out = self._buffer.getvalue().encode()
        self._buffer.seek(0)
        self._buffer.truncate()
        return out
