"""Full-text incident search: query parsing, ranking, snippets, facets, keyset paging."""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import (
    Double,
    String,
    and_,
    bindparam,
    cast,
    column,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    table,
    text,
    union_all,
)
from sqlmodel import Session

from app.auth.principal import Principal
from app.errors import BadQuery, Invalid
from app.ids import MAX_ID
from app.incidents.service import build_reads, read_incidents, visible_incidents
from app.incidents.tables import (
    Incident,
    IncidentHarm,
    IncidentLab,
    IncidentModel,
    IncidentReportLink,
)
from app.labs.tables import Lab
from app.models.service import visible_models
from app.models.tables import AIModel

# --- index DDL (run by migration 0003_incidents) -------------------------------------
# SQLite: an FTS5 external-content table over incident(title, summary, search_text), kept
# in sync by triggers, so every writer (service, CLI, bench) updates it in the same
# transaction. `search_text` holds the linked reports' text, maintained by the service.
SQLITE_DDL = [
    """CREATE VIRTUAL TABLE incident_fts USING fts5(title, summary, search_text,
       content='incident', content_rowid='id', tokenize='porter unicode61')""",
    """CREATE TRIGGER incident_fts_ai AFTER INSERT ON incident BEGIN
       INSERT INTO incident_fts(rowid, title, summary, search_text)
       VALUES (new.id, new.title, new.summary, new.search_text); END""",
    """CREATE TRIGGER incident_fts_ad AFTER DELETE ON incident BEGIN
       INSERT INTO incident_fts(incident_fts, rowid, title, summary, search_text)
       VALUES ('delete', old.id, old.title, old.summary, old.search_text); END""",
    """CREATE TRIGGER incident_fts_au AFTER UPDATE OF title, summary, search_text
       ON incident BEGIN
       INSERT INTO incident_fts(incident_fts, rowid, title, summary, search_text)
       VALUES ('delete', old.id, old.title, old.summary, old.search_text);
       INSERT INTO incident_fts(rowid, title, summary, search_text)
       VALUES (new.id, new.title, new.summary, new.search_text); END""",
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS incident_fts_ai", "DROP TRIGGER IF EXISTS incident_fts_ad",
               "DROP TRIGGER IF EXISTS incident_fts_au", "DROP TABLE IF EXISTS incident_fts"]
# PostgreSQL: a weighted tsvector generated from the same three columns, GIN-indexed.
POSTGRESQL_DDL = [
    """ALTER TABLE incident ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
       setweight(to_tsvector('english', title), 'A') ||
       setweight(to_tsvector('english', summary), 'B') ||
       setweight(to_tsvector('english', search_text), 'C')) STORED""",
    "CREATE INDEX ix_incident_search_vector ON incident USING GIN (search_vector)",
]
POSTGRESQL_DROP = ["DROP INDEX IF EXISTS ix_incident_search_vector",
                   "ALTER TABLE incident DROP COLUMN IF EXISTS search_vector"]


def install(connection, drop: bool = False) -> None:
    sqlite = connection.dialect.name == "sqlite"
    statements = (SQLITE_DROP if sqlite else POSTGRESQL_DROP) if drop else \
        (SQLITE_DDL if sqlite else POSTGRESQL_DDL)
    for statement in statements:
        connection.exec_driver_sql(statement)


# --- the user's query -------------------------------------------------------------------
MAX_QUERY = 500
MAX_TERMS = 16
_TOKEN = re.compile(r'\s*(-?"[^"]*"|-?"[^"]*$|[^\s"]+)')
_WORD = re.compile(r"\w+")


@dataclass
class ParsedQuery:
    """AND of OR-groups of terms/phrases (each a tuple of words), minus the NOT items."""
    groups: list[list[tuple[str, ...]]] = field(default_factory=list)
    negated: list[tuple[str, ...]] = field(default_factory=list)


def parse_query(q: str) -> ParsedQuery:
    """Words, "quoted phrases", OR between items, NOT or a leading '-' to exclude.
    Everything else is punctuation. Mistakes answer 400 naming `q`, never reach SQL."""
    if len(q) > MAX_QUERY:
        raise BadQuery(f"the query is longer than {MAX_QUERY} characters", field="q")
    parsed, pending_or, pending_not, count = ParsedQuery(), False, False, 0
    for raw in _TOKEN.findall(q):
        negate = raw.startswith("-") and len(raw) > 1
        body = raw[1:] if negate else raw
        if body.startswith('"') and (len(body) == 1 or not body.endswith('"')):
            raise BadQuery('a quoted phrase is not closed; add the closing "', field="q")
        if raw == "OR":
            if not parsed.groups or pending_or or pending_not:
                raise BadQuery("OR needs a term on each side", field="q")
            pending_or = True
            continue
        if raw == "NOT":
            if pending_not or pending_or:
                raise BadQuery("NOT needs a term after it", field="q")
            pending_not = True
            continue
        words = tuple(w.lower() for w in _WORD.findall(body))
        if not words:
            continue
        count += len(words)
        if negate or pending_not:
            if pending_or:
                raise BadQuery("OR cannot join an excluded term", field="q")
            parsed.negated.append(words)
        elif pending_or:
            parsed.groups[-1].append(words)
        else:
            parsed.groups.append([words])
        pending_or = pending_not = False
    if pending_or or pending_not:
        raise BadQuery(f"the query ends with {'OR' if pending_or else 'NOT'}", field="q")
    if count > MAX_TERMS:
        raise BadQuery(f"use at most {MAX_TERMS} words", field="q")
    if not parsed.groups:
        raise BadQuery("the query needs at least one word to look for"
                       + (" besides the excluded ones" if parsed.negated else ""), field="q")
    return parsed


def to_fts5(parsed: ParsedQuery) -> str:
    # Every item is double-quoted and made only of \w characters, so no user text can
    # become FTS5 syntax.
    def item(words):
        return '"' + " ".join(words) + '"'
    positive = " AND ".join("(" + " OR ".join(item(w) for w in group) + ")"
                            for group in parsed.groups)
    if parsed.negated:
        return f"({positive}) NOT ({' OR '.join(item(w) for w in parsed.negated)})"
    return positive


_ENGLISH = literal_column("'english'::regconfig")


def to_tsquery(parsed: ParsedQuery):
    """The same query as a PostgreSQL tsquery, built from bound parameters."""
    def item(words):
        fn = func.phraseto_tsquery if len(words) > 1 else func.plainto_tsquery
        return fn(_ENGLISH, " ".join(words))

    def any_of(items):
        out = item(items[0])
        for words in items[1:]:
            out = func.tsquery_or(out, item(words))
        return out
    query = any_of(parsed.groups[0])
    for group in parsed.groups[1:]:
        query = func.tsquery_and(query, any_of(group))
    if parsed.negated:
        query = func.tsquery_and(query, func.tsquery_not(any_of(parsed.negated)))
    return query


# --- search ------------------------------------------------------------------------------
FACETS = ("lab", "model", "harm_type", "severity", "status", "year")
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
_fts = table("incident_fts", column("rowid"))


@dataclass
class SearchParams:
    q: str | None = None
    lab: str | None = None
    model: str | None = None
    harm_type: str | None = None
    severity: str | None = None
    status: str | None = None
    year: int | None = None
    occurred_from: date | None = None
    occurred_to: date | None = None
    sort: str = "relevance"
    cursor: str | None = None
    limit: int = 20
    facets: bool = True


@dataclass
class Hit:
    incident: object
    score: float | None
    snippet: str | None


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int
    facets: dict[str, list[tuple[str, int]]]
    next_cursor: str | None
    # True when the match set was larger than CANDIDATES: total and facet counts are then
    # extrapolated from the candidates (visible rows only) and paging ends with them.
    total_is_estimate: bool = False
    facets_are_estimates: bool = False


def _encode(payload: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> list:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, list) or len(payload) != 3 or payload[0] != sort:
            raise ValueError
        # A forged cursor must not reach SQL: a key of the wrong type, an infinite score or
        # an id beyond 64 bits would be a 500 there, not "not a cursor of ours".
        _, key, last = payload
        if type(last) is not int or not 0 < last <= MAX_ID:
            raise ValueError
        if sort == "relevance":
            if type(key) not in (int, float) or not math.isfinite(key):
                raise ValueError
        else:
            date.fromisoformat(key)
        return payload
    except (ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError, RecursionError):
        raise Invalid("cursor is not one this search issued (same sort, same query)",
                      field="cursor") from None


def _filters(params: SearchParams, principal: Principal) -> list:
    out = [Incident.status != "duplicate"]
    if params.lab:
        out.append(exists().where(IncidentLab.incident_id == Incident.id,
                                  IncidentLab.lab_id == Lab.id, Lab.slug == params.lab))
    if params.model:
        lab_slug, _, slug = params.model.partition("/")
        # Only a model the caller may see matches: a hidden model filters like a
        # missing one (no rows), never like a visible one.
        out.append(exists().where(IncidentModel.incident_id == Incident.id,
                                  IncidentModel.model_id == AIModel.id,
                                  AIModel.lab_id == Lab.id, Lab.slug == lab_slug,
                                  AIModel.slug == slug, visible_models(principal)))
    if params.harm_type:
        out.append(exists().where(IncidentHarm.incident_id == Incident.id,
                                  IncidentHarm.harm_type == params.harm_type))
    for name in ("severity", "status", "year"):
        if getattr(params, name) is not None:
            out.append(getattr(Incident, name) == getattr(params, name))
    if params.occurred_from:
        out.append(Incident.occurred >= params.occurred_from)
    if params.occurred_to:
        out.append(Incident.occurred <= params.occurred_to)
    return out


def search_incidents(session: Session, principal: Principal,
                     params: SearchParams) -> SearchResult:
    """One visibility clause inside every statement: hits, snippets, totals and facet
    counts are all computed over rows the principal may see, never filtered afterwards."""
    if params.sort not in ("relevance", "date"):
        raise Invalid("sort is relevance or date", field="sort")
    if not 1 <= params.limit <= 100:
        raise Invalid("limit must be between 1 and 100", field="limit")
    parsed = parse_query(params.q) if params.q and params.q.strip() else None
    sort = params.sort if parsed else "date"
    sqlite = session.get_bind().dialect.name == "sqlite"
    where = [visible_incidents(principal), *_filters(params, principal)]
    key = None
    if parsed is not None and sqlite:
        return _search_bounded(session, principal, params, parsed, where, sort)
    if parsed is None:
        source = Incident
    else:
        tsq = to_tsquery(parsed)
        vector = literal_column("incident.search_vector")
        source = Incident
        where.append(vector.op("@@")(tsq))
        # ts_rank_cd reads this row's tsvector only (PostgreSQL's ranking functions use
        # no global information), so hidden rows cannot move a score or the order.
        # It is higher-is-better; negate so it sorts ascending like the SQLite key.
        # float8: a float4 rank read back through text would not equal itself in a cursor.
        key = cast(-func.ts_rank_cd(vector, tsq), Double)

    page = select(Incident, key.label("key") if key is not None else null().label("key"))
    page = page.select_from(source).where(*where)
    if sort == "relevance":
        if params.cursor:
            _, k, last = _decode(params.cursor, sort)
            page = page.where(or_(key > k, and_(key == k, Incident.id > last)))
        page = page.order_by(key, Incident.id)
    else:
        if params.cursor:
            _, d, last = _decode(params.cursor, sort)
            d = date.fromisoformat(d)
            page = page.where(or_(Incident.occurred < d,
                                  and_(Incident.occurred == d, Incident.id < last)))
        page = page.order_by(Incident.occurred.desc(), Incident.id.desc())
    rows = session.execute(page.limit(params.limit + 1)).all()
    more = len(rows) > params.limit
    rows = rows[:params.limit]
    cursor = None
    if more and rows:
        inc, k = rows[-1]
        cursor = _encode([sort, k, inc.id] if sort == "relevance"
                         else [sort, inc.occurred.isoformat(), inc.id])
    incidents = [r[0] for r in rows]
    snippets = _snippets(session, parsed, [i.id for i in incidents]) if parsed else {}
    reads = read_incidents(session, principal, incidents, html=False)
    hits = [Hit(read, -k if k is not None else None, snippets.get(read.id))
            for read, (_, k) in zip(reads, rows, strict=True)]
    total, facets = _facets(session, principal, source, where, params.facets)
    return SearchResult(hits, total, facets, cursor)


def _facets(session: Session, principal: Principal, source, where,
            want: bool) -> tuple[int, dict[str, list[tuple[str, int]]]]:
    """Total and facet counts in one statement over one materialised match set."""
    matched = select(Incident.id.label("id"), Incident.severity, Incident.status,
                     Incident.year).select_from(source).where(*where)
    m = matched.cte("m").prefix_with("MATERIALIZED")
    # `m.id + 0` below: SQLite must drive the link-table joins from the (small) match set
    # through the link tables' primary keys, not scan every link row against an index on m.
    parts = [select(literal("total"), cast(null(), String), func.count()).select_from(m)]
    if want:
        for name in ("severity", "status"):
            parts.append(select(literal(name), m.c[name], func.count())
                         .group_by(m.c[name]))
        parts.append(select(literal("year"), cast(m.c.year, String), func.count())
                     .group_by(m.c.year))
        parts += _link_facets(m, principal)
    facets: dict[str, list[tuple[str, int]]] = {name: [] for name in FACETS} if want else {}
    total = 0
    for name, value, count in session.execute(union_all(*parts)):
        if name == "total":
            total = count
        else:
            facets[name].append((str(value), count))
    for values in facets.values():
        values.sort(key=lambda vc: (-vc[1], vc[0]))
    return total, facets


def _link_facets(m, principal: Principal) -> list:
    """Lab, model and harm-type counts over the ids in CTE `m`."""
    return [
        select(literal("lab"), Lab.slug, func.count())
        .select_from(m.join(IncidentLab, IncidentLab.incident_id == m.c.id + 0)
                     .join(Lab, Lab.id == IncidentLab.lab_id))
        .group_by(Lab.slug),
        select(literal("model"), Lab.slug + "/" + AIModel.slug, func.count())
        .select_from(m.join(IncidentModel, IncidentModel.incident_id == m.c.id + 0)
                     .join(AIModel, AIModel.id == IncidentModel.model_id)
                     .join(Lab, Lab.id == AIModel.lab_id))
        .where(visible_models(principal))
        .group_by(Lab.slug, AIModel.slug),
        select(literal("harm_type"), IncidentHarm.harm_type, func.count())
        .select_from(m.join(IncidentHarm, IncidentHarm.incident_id == m.c.id + 0))
        .group_by(IncidentHarm.harm_type)]


def _snippets(session: Session, parsed: ParsedQuery, ids: list[int]) -> dict[int, str]:
    """PostgreSQL: ts_headline for the page's rows only (they passed the visibility
    clause); it reads one document at a time. SQLite builds its snippets in Python from
    the candidates' highlights (_snippet_of)."""
    if not ids:
        return {}
    body = Incident.title + " — " + Incident.summary + " " + Incident.search_text
    options = (f"StartSel={MARK_OPEN}, StopSel={MARK_CLOSE}, MaxWords=30, MinWords=12, "
               "HighlightAll=false")
    rows = session.execute(select(Incident.id, func.ts_headline(
        _ENGLISH, body, to_tsquery(parsed), options)).where(Incident.id.in_(ids)))
    return {rid: mark(snippet) for rid, snippet in rows}


def mark(snippet: str) -> str:
    """Escape everything, then turn the engine's private markers into <mark>."""
    return (html.escape(snippet or "").replace(MARK_OPEN, "<mark>")
            .replace(MARK_CLOSE, "</mark>"))


# --- SQLite: a bounded candidate set --------------------------------------------------
# Exact totals/facets cost a join per match, so on SQLite a query never touches more than
# the CANDIDATES newest visible matches (FTS5 walks its doclist newest-first and stops
# there): if there are no more, everything below is exact; if there are, the ranking
# covers those candidates, paging ends with them, and total/facets are extrapolated from
# them, flagged as estimates. Whether the bound was hit is decided by visible rows alone.
#
# Scores use no corpus statistics. FTS5's bm25() weighs each phrase by its document
# frequency and each row by the average row length, both counted over the whole table,
# hidden rows included: a caller could read the words of embargoed incidents off a
# score. Here a row's score is computed from that row alone (_score: per-column match
# counts from FTS5's highlight(), saturated and length-normalised against fixed lengths:
# BM25's tf part without its idf), so nothing but the row itself can move it.
# Only title and summary are scored (highlight() re-tokenises the text, and their size is
# capped and moderated); linked reports are text any signed-in user can add to without
# limit, so a match only there scores 0 and ranks after the others, newest first.
CANDIDATES = 300
# Column weights (title, summary), and the BM25 tf shape with fixed reference lengths
# in words instead of corpus averages.
WEIGHTS = (10.0, 4.0)
REFERENCE_WORDS = (8, 80)
K1, B = 1.2, 0.75
SNIPPET_WORDS = 24
_HIGHLIGHTS = [func.highlight(literal_column("incident_fts"), col, MARK_OPEN, MARK_CLOSE)
               for col in range(len(WEIGHTS))]


def _score(columns: tuple[str, ...]) -> float:
    """Higher is better. Per column: tf = matched instances (markers in its highlight),
    its length in words (spaces + 1), weight * tf * (K1 + 1) / (tf + K1 * (1 - B + B *
    length / reference)); summed. Runs for every candidate, so it only counts characters
    (str.count is C); SQL would evaluate highlight() once per reference to it."""
    total = 0.0
    for text_, weight, reference in zip(columns, WEIGHTS, REFERENCE_WORDS, strict=True):
        tf = text_.count(MARK_OPEN) if text_ else 0
        if tf:
            norm = K1 * (1 - B + B * (text_.count(" ") + 1) / reference)
            total += weight * tf * (K1 + 1) / (tf + norm)
    return round(total, 9)


def _snippet_of(columns: tuple[str, ...]) -> str | None:
    """About SNIPPET_WORDS words of the column with the most matches, around its densest
    run of matches, '…' where cut; from this row's highlight only. None: no match there."""
    text_ = max(columns, key=lambda c: (c or "").count(MARK_OPEN)) or ""
    if MARK_OPEN not in text_:
        return None
    words = text_.split()
    if len(words) <= SNIPPET_WORDS:
        return mark(" ".join(words))
    hits = [i for i, w in enumerate(words) if MARK_OPEN in w]
    best, start = -1, 0
    for h in hits:
        s = max(0, min(h - 2, len(words) - SNIPPET_WORDS))
        n = sum(1 for x in hits if s <= x < s + SNIPPET_WORDS)
        if n > best:
            best, start = n, s
    window = words[start:start + SNIPPET_WORDS]
    before = " ".join(words[:start])
    # A marked phrase cut by the window keeps its markers balanced.
    inside = before.count(MARK_OPEN) > before.count(MARK_CLOSE)
    body = " ".join(window)
    if inside:
        body = MARK_OPEN + body
    if body.count(MARK_OPEN) > body.count(MARK_CLOSE):
        body += MARK_CLOSE
    return mark(("…" if start else "") + body
                + ("…" if start + SNIPPET_WORDS < len(words) else ""))


def _report_snippets(session: Session, parsed: ParsedQuery, ids: list[int]) -> dict:
    """FTS5's snippet() from the linked reports, for page rows that match only there
    (at most one page of rows; the ids already passed the visibility clause)."""
    if not ids:
        return {}
    rows = session.connection().execute(text(
        "SELECT rowid, snippet(incident_fts, 2, :a, :b, '…', 24) FROM incident_fts "
        "WHERE incident_fts MATCH :q AND rowid IN "
        f"({', '.join(str(int(i)) for i in ids)})"),
        {"a": MARK_OPEN, "b": MARK_CLOSE, "q": to_fts5(parsed)})
    return {rid: mark(snippet) for rid, snippet in rows}


def _visible_span(session: Session, vis) -> tuple[int, int]:
    """Lowest and highest id the caller may see (two short index walks, one statement);
    `vis` is the visibility clause the candidates were selected with (same clock)."""
    first = select(Incident.id).where(vis).order_by(Incident.id).limit(1).scalar_subquery()
    last = select(Incident.id).where(vis).order_by(Incident.id.desc()).limit(1) \
        .scalar_subquery()
    return tuple(session.connection().execute(select(first, last)).one())


# The link-table facet statement over a JSON list of candidate ids (bound at execution).
# It depends on the caller only through model visibility, so it is built once per kind of
# caller and reused: building it costs more than running it.
_LINK_FACETS: dict[tuple, object] = {}


def _candidate_link_facets(principal: Principal):
    key = (principal.is_coordinator, tuple(sorted(principal.lab_ids)))
    stmt = _LINK_FACETS.get(key)
    if stmt is None:
        listed = func.json_each(bindparam("candidate_ids", type_=String)) \
            .table_valued("value")
        m = select(listed.c.value.label("id")).cte("m")
        if len(_LINK_FACETS) >= 1024:
            _LINK_FACETS.clear()
        stmt = _LINK_FACETS[key] = union_all(*_link_facets(m, principal))
    return stmt


_PAGE_COLUMNS = [Incident.id, Incident.title, Incident.summary, Incident.occurred,
                 Incident.harm_types, Incident.taxonomy_version, Incident.severity,
                 Incident.stage_ids, Incident.checkpoint_ids, Incident.status,
                 Incident.duplicate_of, Incident.embargo_until, Incident.version,
                 Incident.created_at, Incident.updated_at, Incident.reporter_id,
                 Incident.reporter_contact]


def _page_subqueries(principal: Principal) -> tuple:
    """Correlated subqueries for a page row: its lab slugs and its visible models (JSON
    arrays, sorted in Python) and its report count. Cached per kind of caller."""
    key = (principal.is_coordinator, tuple(sorted(principal.lab_ids)))
    found = _PAGE_SUBQUERIES.get(key)
    if found is None:
        labs_of = select(func.json_group_array(Lab.slug)) \
            .select_from(IncidentLab.__table__.join(Lab, Lab.id == IncidentLab.lab_id)) \
            .where(IncidentLab.incident_id == Incident.id).scalar_subquery()
        models_of = select(func.json_group_array(func.json_array(Lab.slug, AIModel.slug))) \
            .select_from(IncidentModel.__table__
                         .join(AIModel, AIModel.id == IncidentModel.model_id)
                         .join(Lab, Lab.id == AIModel.lab_id)) \
            .where(IncidentModel.incident_id == Incident.id, visible_models(principal)) \
            .scalar_subquery()
        reports_of = select(func.count()) \
            .where(IncidentReportLink.incident_id == Incident.id).scalar_subquery()
        if len(_PAGE_SUBQUERIES) >= 1024:
            _PAGE_SUBQUERIES.clear()
        found = _PAGE_SUBQUERIES[key] = (labs_of, models_of, reports_of)
    return found


_PAGE_SUBQUERIES: dict[tuple, tuple] = {}


def _read_page(session: Session, principal: Principal, ids: list[int], vis) -> list:
    """read_incidents(html=False) for the page, in `ids` order, in one statement: plain
    rows (no ORM entities, no search_text) with each row's lab slugs, visible models and
    report count from correlated subqueries. The same visibility clause as the candidates
    and read_incidents' model visibility; ordering as read_incidents (sorted here)."""
    if not ids:
        return []
    stmt = select(*_PAGE_COLUMNS, *_page_subqueries(principal)) \
        .where(Incident.id.in_(ids), vis)
    found, labs, models, counts = {}, {}, {}, {}
    for row in session.connection().execute(stmt):
        iid = row[0]
        found[iid] = row
        labs[iid] = sorted(json.loads(row[-3]))
        models[iid] = [f"{lab}/{slug}" for lab, slug in sorted(map(tuple, json.loads(row[-2])))]
        counts[iid] = row[-1]
    return build_reads(principal, [found[i] for i in ids], labs, models, counts, html=False)


def _candidates(session: Session, parsed: ParsedQuery, where: list, sort: str) -> list:
    """(id, severity, status, year, occurred, title and summary highlighted) of the
    newest CANDIDATES + 1 visible matches. `rowid + 0`: FTS5 must drive (newest-first,
    consuming ORDER BY and LIMIT) and look each incident up by primary key, never be
    probed once per incident. highlight() runs on the row FTS5 is positioned on."""
    match = text("incident_fts MATCH :fts_q").bindparams(fts_q=to_fts5(parsed))
    cols = [Incident.id, Incident.severity, Incident.status, Incident.year,
            Incident.occurred, *_HIGHLIGHTS]
    return [tuple(r) for r in session.connection().execute(
        select(*cols).select_from(_fts.join(Incident, Incident.id == _fts.c.rowid + 0))
        .where(*where, match).order_by(_fts.c.rowid.desc()).limit(CANDIDATES + 1))]


def _search_bounded(session: Session, principal: Principal, params: SearchParams,
                    parsed: ParsedQuery, where: list, sort: str) -> SearchResult:
    rows = _candidates(session, parsed, where, sort)
    exact = len(rows) <= CANDIDATES
    rows = rows[:CANDIDATES]
    marked = {r[0]: r[5:7] for r in rows}
    scores = {i: _score(columns) for i, columns in marked.items()}
    if sort == "relevance":
        ranked = sorted((-scores[r[0]], -r[0]) for r in rows)
        if params.cursor:
            _, k, last = _decode(params.cursor, sort)
            ranked = [r for r in ranked if r > (k, -last)]
        ordered = [(-neg, key) for key, neg in ranked]
    else:
        ordered = sorted(((r[4], r[0]) for r in rows), reverse=True)
        if params.cursor:
            _, d, last = _decode(params.cursor, sort)
            ordered = [r for r in ordered if r < (date.fromisoformat(d), last)]
        ordered = [(i, d) for d, i in ordered]
    page = ordered[:params.limit]
    cursor = None
    if len(ordered) > params.limit:
        i, k = page[-1]
        cursor = _encode([sort, k, i] if sort == "relevance" else [sort, k.isoformat(), i])
    ids = [i for i, _ in page]
    reads = _read_page(session, principal, ids, where[0])
    snippets = {i: _snippet_of(marked[i]) for i in ids}
    snippets.update(_report_snippets(session, parsed, [i for i in ids if not snippets[i]]))
    hits = [Hit(read, scores[read.id], snippets.get(read.id)) for read in reads]
    # Facets over the candidates: the scan above already read severity, status and year;
    # the link tables are joined from a JSON list of the candidate ids (one parameter).
    total = len(rows)
    facets: dict[str, list[tuple[str, int]]] = {}
    if params.facets:
        counts = {name: Counter(str(r[col]) for r in rows)
                  for col, name in ((1, "severity"), (2, "status"), (3, "year"))}
        facets = {name: list(counts.get(name, {}).items()) for name in FACETS}
        if rows:
            for name, value, count in session.connection().execute(
                    _candidate_link_facets(principal),
                    {"candidate_ids": json.dumps([r[0] for r in rows])}):
                facets[name].append((str(value), count))
    if not exact:
        # Extrapolate by id density: the candidates are every visible match from the
        # oldest candidate's id up; scale to the caller's visible id span. Built only from
        # visible rows, so embargoed text cannot move it.
        lo, hi = _visible_span(session, where[0])
        factor = (hi - lo + 1) / (hi - rows[-1][0] + 1)
        total = max(CANDIDATES + 1, round(total * factor))
        facets = {name: [(v, max(1, round(c * factor))) for v, c in values]
                  for name, values in facets.items()}
    for values in facets.values():
        values.sort(key=lambda vc: (-vc[1], vc[0]))
    return SearchResult(hits, total, facets, cursor, total_is_estimate=not exact,
                        facets_are_estimates=not exact and params.facets)
