"""Bounded integer types for ids and counts that reach the database from a client."""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

# Ids are 64-bit signed columns on both databases; a larger integer would make the driver
# raise (a 500) instead of answering "no such row". One type, read by Litestar for path
# and query parameters and by pydantic for bodies, keeps every route inside the range.
MAX_ID = 2**63 - 1

Id = Annotated[int, Interval(ge=1, le=MAX_ID)]
# Litestar reads constraints only from the outer Annotated, so optional parameters need it.
OptionalId = Annotated[int | None, Interval(ge=1, le=MAX_ID)]
