"""The transparency log over HTTP: /api/v1/log (JSON, documented in OpenAPI) and /log,
the c2sp.org/tlog-tiles layout that tile clients, witnesses and Go's sumdb/tlog read."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Annotated

import anyio
import litestar
from annotated_types import Interval
from litestar import Controller, Response
from litestar.exceptions import NotFoundException
from pydantic import BaseModel

from app.auth.principal import Principal
from app.db import session_scope
from app.errors import NotFound
from app.http import PUBLIC, get
from app.ids import MAX_ID
from app.settings import get_settings
from app.transparency import service
from app.transparency.service import TILE_WIDTH

Index = Annotated[int, Interval(ge=0, le=MAX_ID)]
# An optional bound must sit inside Annotated: `Index | None` drops it.
OptionalIndex = Annotated[int | None, Interval(ge=0, le=MAX_ID)]
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
NO_STORE = {"Cache-Control": "no-store"}
TEXT = "text/plain; charset=utf-8"
ENTITY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", re.ASCII)


class CheckpointRead(BaseModel):
    origin: str
    tree_size: int
    root_hash: str  # base64, as in the note
    note: str  # the signed note, c2sp.org/tlog-checkpoint
    signed_at: str


class Opening(BaseModel):
    salt: str  # hex
    content: str  # the canonical JSON committed to


class Entry(BaseModel):
    index: int
    leaf: str  # the exact bytes hashed, UTF-8: {"at","commitment","entity_type","v"}
    state: str  # open | sealed (not yours to read yet) | missing (the event row is gone)
    opening: Opening | None


class Entries(BaseModel):
    tree_size: int
    start: int
    end: int
    entries: list[Entry]


class OpeningRead(BaseModel):
    index: int
    leaf: str
    salt: str
    content: str
    commitment: str
    event_id: int


class InclusionProof(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str  # base64
    hashes: list[str]  # base64, RFC 6962 PATH order (leaf side first)


class ConsistencyProof(BaseModel):
    first: int
    second: int
    hashes: list[str]  # base64, RFC 6962 PROOF order


class EntityLeaf(BaseModel):
    entity_type: str
    entity_id: str
    leaf_index: int  # the latest event about it that you may read


class CheckpointPage(BaseModel):
    items: list[CheckpointRead]
    next_before: int | None


def _read(row) -> CheckpointRead:
    return CheckpointRead(origin=row.note.split("\n", 1)[0], tree_size=row.size,
                          root_hash=service.b64(row.root), note=row.note,
                          signed_at=row.at.isoformat())


class LogController(Controller):
    path = "/api/v1/log"
    tags = ["transparency log"]

    @get("/key", opt={**PUBLIC, "media_types": ("text/plain",)})
    def log_key(self) -> Response[str]:
        """The log's public key in note verifier-key format (one line)."""
        return Response(str(service.signer().verifier) + "\n", media_type=TEXT,
                        headers={"Cache-Control": "public, max-age=3600"})

    @get("/checkpoint", opt=PUBLIC)
    def log_checkpoint(self) -> Response[CheckpointRead]:
        """The newest signed checkpoint (a new one at most every few seconds)."""
        with session_scope(write=False) as session:
            return Response(_read(service.latest_checkpoint(session)), headers=NO_STORE)

    @get("/checkpoints", opt=PUBLIC)
    def log_checkpoints(self, before: OptionalIndex = None,
                        limit: Annotated[int, Interval(ge=1, le=200)] = 50) -> CheckpointPage:
        """Every checkpoint signed, newest first: `before` pages on (sizes below it)."""
        with session_scope(write=False) as session:
            service.latest_checkpoint(session)  # the newest is in the history too
        with session_scope(write=False) as session:  # a snapshot that has it
            rows = service.checkpoints(session, before, limit)
            nxt = rows[-1].size if len(rows) == limit else None
            return CheckpointPage(items=[_read(r) for r in rows], next_before=nxt)

    @get("/entries", opt=PUBLIC)
    def log_entries(self, principal: Principal, start: Index = 0,
                    end: OptionalIndex = None) -> Response[Entries]:
        """Leaves [start, end), at most 5000 (1000 when end is left out), with the
        openings you may read. The range is cut to the log's end (tree_size): a range
        past it is empty."""
        with session_scope(write=False) as session:
            # A plain dict: validating a 5,000-entry model cost more than reading it.
            body = service.entries(session, principal, start, end)
        return Response(body, headers=NO_STORE)

    @get("/openings/{index:int}", opt=PUBLIC)
    def log_opening(self, principal: Principal, index: Index) -> Response[OpeningRead]:
        """Salt and content of leaf `index`: SHA-256(salt ‖ content) is its commitment.
        404 until you may read the event (an embargo, a draft, a lab-only change)."""
        with session_scope(write=False) as session:
            body = OpeningRead.model_validate(service.opening(session, principal, index))
        return Response(body, headers=NO_STORE)

    @get("/entity/{entity_type:str}/{entity_id:str}", opt=PUBLIC)
    def log_entity(self, principal: Principal, entity_type: str,
                   entity_id: str) -> EntityLeaf:
        """The leaf of the latest event about an entity (plan, incident, agreement, model,
        checkpoint, ...) that you may read: ask for its inclusion proof next."""
        found = {}
        # Only names an event can carry (no NUL, no 1 KB strings) reach the query.
        if ENTITY_ID.fullmatch(entity_type) and ENTITY_ID.fullmatch(entity_id):
            with session_scope(write=False) as session:
                found = service.leaf_indexes(session, principal, entity_type, [entity_id])
        if entity_id not in found:
            raise NotFound("no logged event about this entity that you may read",
                           field="entity_id")
        return EntityLeaf(entity_type=entity_type, entity_id=entity_id,
                          leaf_index=found[entity_id])

    @get("/proof/inclusion", opt={**PUBLIC, "problems": (404,)})
    def log_inclusion(self, index: Index, tree_size: Index) -> Response[InclusionProof]:
        """RFC 6962 inclusion proof of leaf `index` in the tree of `tree_size` leaves."""
        with session_scope(write=False) as session:
            body = InclusionProof.model_validate(service.inclusion(session, index, tree_size))
        return Response(body, headers=IMMUTABLE)

    @get("/proof/consistency", opt={**PUBLIC, "problems": (404,)})
    def log_consistency(self, first: Index, second: Index) -> Response[ConsistencyProof]:
        """RFC 6962 consistency proof that the tree of `first` leaves is a prefix of the
        tree of `second` leaves."""
        with session_scope(write=False) as session:
            body = ConsistencyProof.model_validate(service.consistency(session, first, second))
        return Response(body, headers=IMMUTABLE)


def _tile_width(rest: list[str]) -> tuple[list[str], int]:
    """Split "<N>[.p/<W>]" parts into the index parts and the width."""
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w = rest[-1]
        if not (w.isascii() and w.isdigit()) or not 1 <= int(w) < TILE_WIDTH or w[0] == "0":
            raise NotFoundException()
        return [*rest[:-2], rest[-2].removesuffix(".p")], int(w)
    return rest, TILE_WIDTH


class TileController(Controller):
    """c2sp.org/tlog-tiles: immutable, so cached for ever by anyone."""
    path = "/log"
    include_in_schema = False

    @get("/checkpoint", opt=PUBLIC)
    def checkpoint_note(self) -> Response[str]:
        with session_scope(write=False) as session:
            note = service.latest_checkpoint(session).note
        return Response(note, media_type=TEXT, headers=NO_STORE)

    # Async, so a tile already held is answered without a thread hop or a query.
    @litestar.get("/tile/{tile_path:path}", opt=PUBLIC)
    async def tile(self, tile_path: str) -> Response[bytes]:
        key = (get_settings().database_url, tile_path)  # one log per database
        body = TILES.get(key)
        if body is None:
            body = await anyio.to_thread.run_sync(_read_tile, tile_path)
            TILES.put(key, body)
        return Response(body, media_type="application/octet-stream", headers=IMMUTABLE)


def _read_tile(tile_path: str) -> bytes:
    parts = tile_path.removeprefix("/").split("/")
    if len(parts) < 2:
        raise NotFoundException()
    kind, rest = parts[0], parts[1:]
    rest, width = _tile_width(rest)
    try:
        n = service.parse_tile_index(rest)
        with session_scope(write=False) as session:
            if kind == "entries":
                return service.entry_bundle(session, n, width)
            if kind.isascii() and kind.isdigit() and len(kind) == 1 and int(kind) < 8:
                return service.hash_tile(session, int(kind), n, width)
            raise NotFoundException()
    except NotFound:  # a tile not there (yet): the plain 404 tile clients expect
        raise NotFoundException() from None


class ImmutableCache:
    """Answers that never change once they exist (a tile of a given width, a bundle),
    kept per process up to `budget` bytes, least recently used out first. A 404 is never
    kept: the tile may exist a moment later. Safe across servers: nothing is invalidated."""

    def __init__(self, budget: int) -> None:
        self.budget, self.size = budget, 0
        self.items: OrderedDict[tuple, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> bytes | None:
        with self.lock:
            body = self.items.get(key)
            if body is not None:
                self.items.move_to_end(key)
            return body

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.size = 0

    def put(self, key: tuple, body: bytes) -> None:
        with self.lock:
            if key in self.items or len(body) > self.budget:
                return
            self.items[key] = body
            self.size += len(body)
            while self.size > self.budget:
                _, old = self.items.popitem(last=False)
                self.size -= len(old)


TILES = ImmutableCache(64 * 2**20)
