"""Keyset pagination with opaque cursors, shared by every list endpoint."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from app.errors import Invalid
from app.ids import MAX_ID

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


@dataclass
class PageRequest:
    cursor: str | None = None
    limit: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
        self.after_id = decode_cursor(self.cursor)


def _cursor_pattern() -> str:
    """The cursors this server issues, as a regular expression for the OpenAPI document:
    base64url("id:" + 1 to 18 digits), unpadded. 3 bytes are 4 characters, so "id:" is
    always "aWQ6" and each three digits (bytes 0x30-0x39) encode to four characters from
    small sets; 18 digits keep every id below 2**63. Every string it matches decodes."""
    lead = "(?:[MN][DTjz]|O[DT])"  # the first digit's 6 high bits, then 2 + 4 bits
    three = lead + "[AEIMQUYcgk][w-z0-5]"
    two = lead + "[AEIMQUYcgk]"
    one = "(?:[MN][AQgw]|O[AQ])"
    return f"^aWQ6(?:{three}){{0,5}}(?:{three}|{two}|{one})$"


CURSOR_PATTERN = _cursor_pattern()


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        # A forged cursor with a huge id would overflow the driver (a 500), not match nothing.
        if kind != "id" or not value.isdigit() or len(value) > 19 or int(value) > MAX_ID:
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor is not one this server issued", field="cursor") from None


def paginate(session, query, id_column, page: PageRequest, *, descending: bool = True):
    """Run `query` one page at a time, ordered by `id_column`; returns (rows, next_cursor)."""
    if page.after_id is not None:
        query = query.where(id_column < page.after_id if descending else
                            id_column > page.after_id)
    order = id_column.desc() if descending else id_column.asc()
    rows: list[Any] = list(session.exec(query.order_by(order).limit(page.limit + 1)))
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return rows, (encode_cursor(rows[-1].id) if more and rows else None)
