"""Reading the transparency log: checkpoints, entries and openings, proofs, tiles, and
the leaf index of an entity's latest event."""

from __future__ import annotations

import base64
from datetime import UTC, timedelta
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from app.access import openable_events
from app.auth.principal import Principal
from app.errors import NotFound
from app.events.tables import Event
from app.settings import get_settings
from app.timeutil import utcnow
from app.transparency import merkle
from app.transparency.log import commitment, event_content, fill_on_append, reader, tree_size
from app.transparency.note import Checkpoint, Signer, load_or_create_signer
from app.transparency.tables import LogCheckpoint, LogLeaf, LogNode

MAX_ENTRIES = 5000
DEFAULT_ENTRIES = 1000
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT


@lru_cache(maxsize=4)
def _signer(path: str, origin: str) -> Signer:
    return load_or_create_signer(Path(path), origin)


def signer() -> Signer:
    settings = get_settings()
    return _signer(str(settings.log_key_path), settings.log_origin_line)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- checkpoints ------------------------------------------------------------------------

def latest_checkpoint(session: Session) -> LogCheckpoint:
    """The newest signed checkpoint, signing a new one first when the tree has grown and
    the last is older than STAGEGATE_LOG_CHECKPOINT_S (so at most one every few seconds,
    however many servers answer). Checkpoints are kept: /api/v1/log/checkpoints."""
    last = session.execute(select(LogCheckpoint).order_by(LogCheckpoint.size.desc())
                           .limit(1)).scalars().first()
    size = tree_size(session)
    interval = timedelta(seconds=get_settings().log_checkpoint_s)
    if last is not None and (last.size >= size or utcnow() - _aware(last.at) < interval):
        return last
    return sign_checkpoint(session, size)


def _aware(at):
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def sign_checkpoint(session: Session, size: int) -> LogCheckpoint:
    root = merkle.tree_root(size, reader(session))
    note = signer().sign(Checkpoint(get_settings().log_origin_line, size, root).text())
    row = {"size": size, "root": root, "note": note, "at": utcnow()}
    bind = session.get_bind()
    stmt = (pg_insert if bind.dialect.name == "postgresql" else sqlite_insert)(LogCheckpoint)
    # Another server may have signed this size a moment ago: keep the first.
    with bind.connect().execution_options(write=True) as conn, conn.begin():
        conn.execute(stmt.values(**row).on_conflict_do_nothing(index_elements=["size"]))
        kept = conn.execute(select(LogCheckpoint.__table__).where(
            LogCheckpoint.size == size)).mappings().one()
    return LogCheckpoint(**kept)


def checkpoints(session: Session, before: int | None, limit: int) -> list[LogCheckpoint]:
    """Newest first; `before`: sizes below it (the next page)."""
    query = select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(limit)
    if before is not None:
        query = query.where(LogCheckpoint.size < before)
    return list(session.execute(query).scalars())


# -- entries and openings ---------------------------------------------------------------

def _range(start: int, end: int | None, size: int) -> tuple[int, int]:
    """[start, end) cut to the log and to MAX_ENTRIES (DEFAULT_ENTRIES when no end is
    given), as CT's get-entries does: a range past the end is empty (the answer's
    tree_size says how far the log goes)."""
    start = min(start, size)
    end = min(size, start + DEFAULT_ENTRIES) if end is None else min(end, size)
    return start, max(start, min(end, start + MAX_ENTRIES))


def entries(session: Session, principal: Principal, start: int, end: int | None) -> dict:
    """Leaves [start, end) with, for each, its opening where `principal` may read the
    event now ("open"), none where they may not ("sealed"), or none because the event row
    is gone ("missing": the database was altered behind the registry's back)."""
    size = tree_size(session)
    start, end = _range(start, end, size)
    # Columns, not ORM objects: a monitor reads a million of these.
    rows = session.execute(
        select(LogLeaf.idx, LogLeaf.leaf, LogLeaf.salt, Event.id, Event.at, Event.actor,
               Event.entity_type, Event.entity_id, Event.action, Event.digest, Event.data)
        .outerjoin(Event, Event.id == LogLeaf.event_id)
        .where(LogLeaf.idx >= start, LogLeaf.idx < end).order_by(LogLeaf.idx)).all()
    ids = [r.id for r in rows if r.id is not None]
    if principal.is_coordinator:
        readable = set(ids)
    else:
        readable = set(session.execute(select(Event.id).where(
            Event.id.in_(ids), openable_events(principal))).scalars()) if ids else set()
    out = []
    for r in rows:
        item = {"index": r.idx, "leaf": r.leaf, "state": "sealed", "opening": None}
        if r.id is None:
            item["state"] = "missing"
        elif r.id in readable:
            item["state"] = "open"
            item["opening"] = {"salt": bytes(r.salt).hex(),
                               "content": event_content(r).decode()}
        out.append(item)
    return {"tree_size": size, "start": start, "end": end, "entries": out}


def opening(session: Session, principal: Principal, index: int) -> dict:
    """The salt and content that open leaf `index`, for a reader of its event; a neutral
    404 to everyone else (the leaf itself says what the public may know)."""
    row = session.execute(select(LogLeaf, Event).join(Event, Event.id == LogLeaf.event_id)
                          .where(LogLeaf.idx == index, openable_events(principal))).first()
    if row is None:
        raise NotFound(f"no opening of leaf {index} for you", field="index")
    leaf, e = row
    content = event_content(e)
    return {"index": index, "leaf": leaf.leaf, "salt": leaf.salt.hex(),
            "content": content.decode(), "commitment": commitment(leaf.salt, content),
            "event_id": e.id}


# -- proofs -----------------------------------------------------------------------------

def _tree(size: int, current: int) -> None:
    # 404, not 422: a well-formed size the log has not reached (yet) is a resource not
    # there, as a tile past the end is.
    if not 1 <= size <= current:
        raise NotFound(f"tree_size {size}: the log has no tree of that size (it holds "
                       f"{current} leaves)")


def inclusion(session: Session, index: int, size: int) -> dict:
    _tree(size, tree_size(session))
    if index >= size:
        raise NotFound(f"index {index} is not in a tree of {size} leaves")
    read = reader(session)
    proof = merkle.inclusion_proof(index, size, read)
    leaf = read([(0, index)])[0]
    return {"index": index, "tree_size": size, "leaf_hash": b64(leaf),
            "hashes": [b64(h) for h in proof]}


def consistency(session: Session, first: int, second: int) -> dict:
    current = tree_size(session)
    if second > current:
        raise NotFound(f"second {second}: the log has no tree of that size (it holds "
                       f"{current} leaves)")
    if first > second:
        raise NotFound(f"first {first} is above second {second}: a tree is a prefix only "
                       "of a larger one")
    proof = merkle.consistency_proof(first, second, reader(session))
    return {"first": first, "second": second, "hashes": [b64(h) for h in proof]}


# -- tiles (c2sp.org/tlog-tiles) --------------------------------------------------------

def tile_index_path(n: int) -> str:
    """1234067 → "x001/x234/067"."""
    digits = str(n)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_tile_index(parts: list[str]) -> int:
    """"x001/x234/067" → 1234067; only the one spelling tile_index_path gives (ASCII
    digits, no x000 groups in front), so each tile has one address to cache."""
    joined = "/".join(parts)
    digits = joined.replace("x", "").replace("/", "")
    if not parts or len(parts) > 7 or not (digits.isascii() and digits.isdigit()):
        raise NotFound("no such tile")
    n = int(digits)
    if tile_index_path(n) != joined:
        raise NotFound("no such tile")
    return n


def hash_tile(session: Session, level: int, n: int, width: int) -> bytes:
    """Tile `level`/`n`: the hashes at tree level 8·level, [n·256, n·256 + width)."""
    lo = n * TILE_WIDTH
    hashes = list(session.execute(select(LogNode.hash).where(
        LogNode.level == level * TILE_HEIGHT, LogNode.idx >= lo, LogNode.idx < lo + width)
        .order_by(LogNode.idx)).scalars())
    if len(hashes) != width:
        raise NotFound(f"tile {level}/{n} has fewer than {width} hashes yet")
    return b"".join(hashes)


def entry_bundle(session: Session, n: int, width: int) -> bytes:
    """Entries [n·256, n·256 + width), each as a big-endian uint16 length and the leaf."""
    lo = n * TILE_WIDTH
    leaves = list(session.execute(select(LogLeaf.leaf).where(
        LogLeaf.idx >= lo, LogLeaf.idx < lo + width).order_by(LogLeaf.idx)).scalars())
    if len(leaves) != width:
        raise NotFound(f"entry bundle {n} has fewer than {width} entries yet")
    out = bytearray()
    for leaf in leaves:
        data = leaf.encode()
        out += len(data).to_bytes(2, "big") + data
    return bytes(out)


# -- an entity's leaves -----------------------------------------------------------------

def leaf_indexes(session: Session, principal: Principal, entity_type: str,
                 entity_ids, actions: tuple[str, ...] = (), *,
                 entity_readable: bool = False) -> dict[str, int]:
    """entity id → the leaf index of its latest event `principal` may open (one query).
    Only those count: a later lab-only change must not show as a newer index.
    `entity_readable`: the caller has read these entities through their own visible_*
    filter already (see openable_events)."""
    ids = [str(i) for i in entity_ids]
    if not ids:
        return {}
    query = (select(Event.entity_id, func.max(LogLeaf.idx))
             .join(LogLeaf, LogLeaf.event_id == Event.id)
             .where(Event.entity_type == entity_type, Event.entity_id.in_(ids),
                    openable_events(principal, entity_readable=entity_readable))
             .group_by(Event.entity_id))
    if actions:
        query = query.where(Event.action.in_(actions))
    rows = session.execute(query).all()
    return {entity_id: idx for entity_id, idx in rows}


def set_log_indexes(session: Session, principal: Principal, entity_type: str, reads: list,
                    actions: tuple[str, ...] = ()) -> list:
    """Set each read's `log_index` (reads of entities with an `id`); a write's own new
    event is named once the commit gives it a leaf."""
    leaves = leaf_indexes(session, principal, entity_type, [r.id for r in reads], actions,
                          entity_readable=True)
    for read in reads:
        read.log_index = leaves.get(str(read.id))
    fill_on_append(session, entity_type, reads, actions)
    return reads


def revision_leaves(session: Session, principal: Principal, plan_id: int) -> dict[int, int]:
    """Plan revision number → the leaf of the event that recorded it (plan events carry
    their revision in data), for revisions whose event the reader may open; the caller
    has read the plan."""
    rows = session.execute(
        select(Event.data, LogLeaf.idx).join(LogLeaf, LogLeaf.event_id == Event.id)
        .where(Event.entity_type == "plan", Event.entity_id == str(plan_id),
               openable_events(principal, entity_readable=True))
        .order_by(LogLeaf.idx)).all()
    return {data["revision"]: idx for data, idx in rows
            if isinstance(data, dict) and isinstance(data.get("revision"), int)}


def event_leaves(session: Session, event_ids) -> dict[int, int]:
    """event id → leaf index."""
    ids = list(event_ids)
    if not ids:
        return {}
    return dict(session.execute(select(LogLeaf.event_id, LogLeaf.idx)
                                .where(LogLeaf.event_id.in_(ids))).all())
