"""Column types shared by the table classes."""

from sqlalchemy import BigInteger, Integer

# Ids and counts that can grow: 64-bit on PostgreSQL (its INTEGER is 32-bit, so a 7B-
# parameter model or the 2,147,483,648th event would fail). SQLite's INTEGER is already
# 64-bit, and an INTEGER PRIMARY KEY must stay INTEGER to remain the rowid alias.
BIGINT = BigInteger().with_variant(Integer(), "sqlite")

from app.ids import MAX_ID  # noqa: F401 (one definition, app.ids)
