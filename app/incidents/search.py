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
    ARRAY,
    BigInteger,
    Double,
    String,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    tuple_,
    union_all,
)
from sqlmodel import Session

from app.access import visible_incidents, visible_models
from app.auth.principal import Principal
from app.errors import BadQuery, Invalid
from app.ids import MAX_ID
from app.incidents.service import build_reads
from app.incidents.tables import (
    Incident,
    IncidentHarm,
    IncidentLab,
    IncidentModel,
    IncidentReportLink,
)
from app.labs.tables import Lab
from app.models.tables import AIModel
from app.transparency.service import set_log_indexes

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
    Everything else is punctuation. An exclusion always excludes from the whole query, so
    `a OR NOT b` (or `a OR -b`) reads as `a NOT b`. Mistakes answer 422 naming `q`, never
    reach SQL; `repair_query` makes any text a query this accepts (the web search box)."""
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
            if pending_not:
                raise BadQuery("NOT needs a term after it", field="q")
            pending_not = True
            continue
        words = tuple(w.lower() for w in _WORD.findall(body))
        if not words:
            continue
        count += len(words)
        if negate or pending_not:
            # An exclusion cannot be one alternative of an OR-group: the OR before it
            # is dropped (`a OR NOT b` is `a NOT b`).
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


def repair_query(q: str) -> tuple[str | None, list[str]]:
    """For a search box people type into: the query `parse_query` would read from `q`,
    rewritten so that it accepts it, and notes on what was changed. An unclosed quote
    closes at the end, a dangling OR or NOT is dropped, symbols and emoji (no word
    characters) are ignored, and text beyond the length and word limits is cut. None when
    nothing is left to look for (symbols alone, or only excluded words)."""
    notes: list[str] = []
    if len(q) > MAX_QUERY:
        q = q[:MAX_QUERY]
        notes.append(f"only the first {MAX_QUERY} characters were used")
    out: list[str] = []
    pending: list[str] = []
    positive = count = 0
    for raw in _TOKEN.findall(q):
        if raw in ("OR", "NOT"):
            if raw not in pending:
                pending.append(raw)
            continue
        negate = raw.startswith("-") and len(raw) > 1
        body = raw[1:] if negate else raw
        quoted = body.startswith('"')
        if quoted and (len(body) == 1 or not body.endswith('"')):
            notes.append("an unclosed quote was closed at the end")
        words = [w.lower() for w in _WORD.findall(body)]
        if not words:
            continue
        if count + len(words) > MAX_TERMS:
            notes.append(f"only the first {MAX_TERMS} words were used")
            break
        count += len(words)
        exclude = negate or "NOT" in pending
        ops = [op for op in pending if op == "NOT" or (op == "OR" and positive
                                                        and not exclude)]
        pending = []
        item = ("-" if negate else "") + (
            '"' + " ".join(words) + '"' if quoted or len(words) > 1 else words[0])
        out.extend(ops)
        out.append(item)
        positive += not exclude
    if pending:
        notes.append(f"a trailing {' '.join(pending)} was ignored")
    if not positive:
        return None, notes
    return " ".join(out), notes


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


# relevance: best match first; date: newest occurrence first; received: newest report
# first (the moderation queue's order: when an incident happened says nothing of when
# it arrived).
SORTS = ("relevance", "date", "received")


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
        elif sort == "received":
            if key != last:
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
    if params.sort not in SORTS:
        raise Invalid("sort is relevance, date or received", field="sort")
    if not 1 <= params.limit <= 100:
        raise Invalid("limit must be between 1 and 100", field="limit")
    parsed = parse_query(params.q) if params.q and params.q.strip() else None
    where = [visible_incidents(principal, status=params.status), *_filters(params, principal)]
    sqlite = session.get_bind().dialect.name == "sqlite"
    if not sqlite:
        # psycopg prepares a statement run 5 times on a connection, and PostgreSQL then
        # switches to a generic plan that ignores the values: the word's frequency, the
        # id window, the filters. Pooled connections reach that in seconds and search got
        # 10x slower (a GIN read of every match of a common word). Plan each time.
        # And a rare word's matches are one heap page each, scattered over the table: with
        # prefetching (posix_fadvise) a bitmap heap scan asks for them all at once instead
        # of one read at a time when they are not in memory (the default is 1).
        # set_config(..., true) is SET LOCAL: this transaction only; one round trip.
        session.connection().exec_driver_sql(
            "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), "
            "set_config('effective_io_concurrency', '64', true)")
    if parsed is None:
        return _list(session, principal, params, where)
    sort = params.sort
    if sqlite:
        rows = _candidates(session, parsed, where)
        marked = {r[0]: r[5:7] for r in rows[:CANDIDATES]}
        scores = {i: _score(columns) for i, columns in marked.items()}
    else:
        rows = _pg_candidates(session, parsed, where)
        marked = None
        scores = {r[0]: r[5] for r in rows[:CANDIDATES]}
    return _search_bounded(session, principal, params, parsed, where, sort, rows, scores,
                           marked)


def _list(session: Session, principal: Principal, params: SearchParams,
          where: list) -> SearchResult:
    """No query: newest first by (occurred, id), keyset-paged through everything (an index
    on (occurred, id) serves it). Total and facets come from the same bounded candidate
    set as a search (the newest CANDIDATES visible rows by id), so an uncached read never
    counts every incident; beyond the bound they are flagged as estimates."""
    page = _page_select(session, principal).where(*where)
    if params.sort == "received":  # arrival order: ids are assigned as reports arrive
        if params.cursor:
            page = page.where(Incident.id < _decode(params.cursor, "received")[2])
        page = page.order_by(Incident.id.desc())
    else:
        if params.cursor:
            _, d, last = _decode(params.cursor, "date")
            page = page.where(tuple_(Incident.occurred, Incident.id)
                              < tuple_(literal(date.fromisoformat(d)), literal(last)))
        page = page.order_by(Incident.occurred.desc(), Incident.id.desc())
    found = session.connection().execute(page.limit(params.limit + 1)).all()
    cursor = None
    if len(found) > params.limit:
        found = found[:params.limit]
        last = found[-1]
        cursor = _encode(["received", last.id, last.id] if params.sort == "received"
                         else ["date", last.occurred.isoformat(), last.id])
    reads, _ = _reads_of(session, principal, found)
    rows = [tuple(r) for r in session.connection().execute(
        select(*_CANDIDATE_COLUMNS).where(*where).order_by(Incident.id.desc())
        .limit(CANDIDATES + 1))]
    total, facets, exact = _counts(session, principal, rows, where[0], params.facets)
    return SearchResult([Hit(read, None, None) for read in reads], total, facets, cursor,
                        total_is_estimate=not exact,
                        facets_are_estimates=not exact and params.facets)


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


def _headline(parsed: ParsedQuery):
    """PostgreSQL's snippet, a column of the page statement (page rows only; they passed
    the visibility clause): ts_headline reads one document at a time. From the title and
    summary when they match (weights A and B of the vector), else from the linked
    reports; never both, so a long report is re-parsed only for a row that matches
    nowhere else (as SQLite's snippet() of reports). SQLite builds its snippets in Python
    from the candidates' highlights (_snippet_of)."""
    vector = literal_column("incident.search_vector")
    options = (f"StartSel={MARK_OPEN}, StopSel={MARK_CLOSE}, MaxWords=30, MinWords=12, "
               "HighlightAll=false")
    own = func.ts_filter(vector, literal_column("'{a,b}'::\"char\"[]")).op("@@")(
        to_tsquery(parsed))
    return case((own, func.ts_headline(_ENGLISH, Incident.title + " — " + Incident.summary,
                                       to_tsquery(parsed), options)),
                else_=func.ts_headline(_ENGLISH, Incident.search_text, to_tsquery(parsed),
                                       options))


def mark(snippet: str) -> str:
    """Escape everything, then turn the engine's private markers into <mark>."""
    return (html.escape(snippet or "").replace(MARK_OPEN, "<mark>")
            .replace(MARK_CLOSE, "</mark>"))


# --- a bounded candidate set (both databases) ---------------------------------------
# Exact totals/facets cost a join per match, so a query never touches more than the
# CANDIDATES newest visible matches (SQLite: FTS5 walks its doclist newest-first and stops
# there; PostgreSQL: the GIN index's matches, newest kept): if there are no more,
# everything below is exact; if there are, the ranking covers those candidates, paging
# ends with them, and total/facets are extrapolated from them, flagged as estimates.
# Whether the bound was hit is decided by visible rows alone. The list (no query) takes
# its total and facets the same way but pages through everything.
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


def _candidate_link_facets(principal: Principal, sqlite: bool):
    key = (sqlite, principal.is_coordinator, tuple(sorted(principal.lab_ids)))
    stmt = _LINK_FACETS.get(key)
    if stmt is None:
        listed = func.json_each(bindparam("candidate_ids", type_=String)) \
            .table_valued("value") if sqlite else \
            func.unnest(bindparam("candidate_ids", type_=ARRAY(BigInteger))) \
            .table_valued("value").render_derived()
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
                 Incident.reporter_contact, Incident.acknowledged_at]


def _page_subqueries(principal: Principal, sqlite: bool) -> tuple:
    """Correlated subqueries for a page row: its lab slugs and its visible models (JSON
    arrays, sorted in Python) and its report count. Cached per kind of caller."""
    key = (sqlite, principal.is_coordinator, tuple(sorted(principal.lab_ids)))
    found = _PAGE_SUBQUERIES.get(key)
    if found is None:
        agg, pair = (func.json_group_array, func.json_array) if sqlite else \
            (func.json_agg, func.json_build_array)
        labs_of = select(agg(Lab.slug)) \
            .select_from(IncidentLab.__table__.join(Lab, Lab.id == IncidentLab.lab_id)) \
            .where(IncidentLab.incident_id == Incident.id).scalar_subquery()
        models_of = select(agg(pair(Lab.slug, AIModel.slug))) \
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


def _json_list(value) -> list:
    """SQLite's json_group_array is text; PostgreSQL's json_agg arrives parsed, or NULL
    over no rows."""
    return json.loads(value) if isinstance(value, str) else (value or [])


def _page_select(session: Session, principal: Principal, extra: tuple = ()):
    """Page rows as plain rows (no ORM entities, no search_text) with each row's lab
    slugs, visible models and report count from correlated subqueries, then `extra`."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    return select(*_PAGE_COLUMNS, *_page_subqueries(principal, sqlite), *extra)


def _reads_of(session: Session, principal: Principal, rows: list) -> tuple[list, dict]:
    """read_incidents(html=False) for _page_select rows, in their order (the same model
    visibility; lab and model order as read_incidents), and the extra columns by id."""
    n = len(_PAGE_COLUMNS)
    labs, models, counts, extras = {}, {}, {}, {}
    for row in rows:
        iid = row[0]
        labs[iid] = sorted(_json_list(row[n]))
        models[iid] = [f"{lab}/{slug}" for lab, slug in sorted(map(tuple, _json_list(row[n + 1])))]
        counts[iid] = row[n + 2]
        extras[iid] = tuple(row[n + 3:])
    reads = build_reads(principal, rows, labs, models, counts, html=False)
    return set_log_indexes(session, principal, "incident", reads), extras


def _read_page(session: Session, principal: Principal, ids: list[int], vis,
               extra: tuple = ()) -> tuple[list, dict]:
    """The page's rows in `ids` order, in one statement, under the same visibility clause
    as the candidates. `extra`: more columns per row (PostgreSQL's snippet), by id."""
    if not ids:
        return [], {}
    found = {row[0]: row for row in session.connection().execute(
        _page_select(session, principal, extra).where(Incident.id.in_(ids), vis))}
    return _reads_of(session, principal, [found[i] for i in ids])


_CANDIDATE_COLUMNS = [Incident.id, Incident.severity, Incident.status, Incident.year,
                      Incident.occurred]


def _candidates(session: Session, parsed: ParsedQuery, where: list) -> list:
    """(id, severity, status, year, occurred, title and summary highlighted) of the
    newest CANDIDATES + 1 visible matches. `rowid + 0`: FTS5 must drive (newest-first,
    consuming ORDER BY and LIMIT) and look each incident up by primary key, never be
    probed once per incident. highlight() runs on the row FTS5 is positioned on."""
    match = text("incident_fts MATCH :fts_q").bindparams(fts_q=to_fts5(parsed))
    cols = [*_CANDIDATE_COLUMNS, *_HIGHLIGHTS]
    return [tuple(r) for r in session.connection().execute(
        select(*cols).select_from(_fts.join(Incident, Incident.id == _fts.c.rowid + 0))
        .where(*where, match).order_by(_fts.c.rowid.desc()).limit(CANDIDATES + 1))]


# PostgreSQL finds the newest matches in windows of ids. Unbounded, the planner has two
# plans and both are slow for a word in about 1 % of rows: walk the primary key backwards
# testing every row (tens of thousands), or read every match the GIN index gives
# (thousands of random heap pages, rarely cached: rows are about 2 KB). So: first the
# newest FIRST_WINDOW ids (either plan is cheap there); if that held too few matches, the
# next window is sized from the density seen (about twice what should hold the rest) and
# the planner combines the GIN index with the id range; a word too rare to measure there
# (under RARE matches) is read from the GIN index alone, below the window: it has few
# matches anywhere. A query of several words or a phrase is tested row by row in any
# window of at most ROW_TEST_WINDOW ids (about 0.8 ms per 1,000 rows, stopping once it has
# enough): the GIN scan of an AND reads every posting of each word in the whole table
# (35 ms for three words of 5 % each at 1M rows) before the id range can cut it.
FIRST_WINDOW = 4096
ROW_TEST_WINDOW = 16_384  # at least FIRST_WINDOW: the first window is always small
RARE = 8


def _pg_candidates(session: Session, parsed: ParsedQuery, where: list) -> list:
    """(id, severity, status, year, occurred, score) of the newest CANDIDATES + 1 visible
    matches. ts_rank_cd (this row's tsvector only, no corpus statistics) runs on those
    alone, in the outer query. float8: a float4 rank read back through a cursor would not
    equal itself."""
    connection = session.connection()
    top = connection.execute(select(func.max(Incident.id))).scalar()
    if top is None:
        return []
    rows: list = []
    upper, width, first = top + 1, FIRST_WINDOW, True
    while len(rows) <= CANDIDATES:
        lower = upper - width if width else 1
        window = [Incident.id < upper] + ([Incident.id >= lower] if lower > 1 else [])
        rows += connection.execute(_pg_window(parsed, where, window,
                                              CANDIDATES + 1 - len(rows), first,
                                              0 < width <= ROW_TEST_WINDOW)).all()
        if lower <= 1:
            break
        seen = len(rows)
        width = 2 * (CANDIDATES + 1 - seen) * (top + 1 - lower) // seen if seen >= RARE else 0
        upper, first = lower, False
    return [tuple(r) for r in rows]


def _pg_window(parsed: ParsedQuery, where: list, window: list, limit: int, first: bool,
               small: bool):
    """The newest matches in one id window. In a small window (the first, or one of at
    most ROW_TEST_WINDOW ids) a query of several words or a phrase is tested row by row,
    newest first: ts_match_vq is the function behind @@, which the planner cannot send to
    the GIN index, whose scan of common words ANDed costs 15-35 ms (it estimates it far
    lower); one word is left to the planner (the GIN scan of one word is cheap, and for a
    rare word it reads only the matching pages). Otherwise past the first, the order is
    on `id + 0`: the planner must not walk the primary key backwards hoping to stop early
    (its match estimate for a rare word is often 5x too high); it combines the GIN index
    with the id range or reads the GIN matches."""
    vector = literal_column("incident.search_vector")
    several = len(parsed.groups) > 1 or any(len(words) > 1 for words in parsed.groups[0])
    if small and several:
        match, order = func.ts_match_vq(vector, to_tsquery(parsed)), Incident.id.desc()
    else:
        match = vector.op("@@")(to_tsquery(parsed))
        order = Incident.id.desc() if first else (Incident.id + 0).desc()
    inner = select(*_CANDIDATE_COLUMNS, vector.label("v")).where(*where, *window, match) \
        .order_by(order).limit(limit).subquery("c")
    return select(*[inner.c[c.key] for c in _CANDIDATE_COLUMNS],
                  cast(func.ts_rank_cd(inner.c.v, to_tsquery(parsed)), Double)) \
        .order_by(inner.c.id.desc())


def _search_bounded(session: Session, principal: Principal, params: SearchParams,
                    parsed: ParsedQuery, where: list, sort: str, rows: list,
                    scores: dict[int, float], marked: dict | None) -> SearchResult:
    """Rank and page the candidates (both databases). `marked`: SQLite's highlighted
    title and summary per candidate (its snippets); None on PostgreSQL (ts_headline)."""
    candidates = rows[:CANDIDATES]
    if sort == "relevance":
        ranked = sorted((-scores[r[0]], -r[0]) for r in candidates)
        if params.cursor:
            _, k, last = _decode(params.cursor, sort)
            ranked = [r for r in ranked if r > (k, -last)]
        ordered = [(-neg, key) for key, neg in ranked]
    elif sort == "received":
        ordered = sorted((r[0] for r in candidates), reverse=True)
        if params.cursor:
            last = _decode(params.cursor, sort)[2]
            ordered = [i for i in ordered if i < last]
        ordered = [(i, i) for i in ordered]
    else:
        ordered = sorted(((r[4], r[0]) for r in candidates), reverse=True)
        if params.cursor:
            _, d, last = _decode(params.cursor, sort)
            ordered = [r for r in ordered if r < (date.fromisoformat(d), last)]
        ordered = [(i, d) for d, i in ordered]
    page = ordered[:params.limit]
    cursor = None
    if len(ordered) > params.limit:
        i, k = page[-1]
        cursor = _encode([sort, k, i] if sort != "date" else [sort, k.isoformat(), i])
    ids = [i for i, _ in page]
    if marked is not None:
        reads, _ = _read_page(session, principal, ids, where[0])
        snippets = {i: _snippet_of(marked[i]) for i in ids}
        snippets.update(_report_snippets(session, parsed,
                                         [i for i in ids if not snippets[i]]))
    else:
        reads, extras = _read_page(session, principal, ids, where[0], (_headline(parsed),))
        snippets = {i: mark(extras[i][0]) for i in ids}
    hits = [Hit(read, scores[read.id], snippets.get(read.id)) for read in reads]
    total, facets, exact = _counts(session, principal, rows, where[0], params.facets)
    return SearchResult(hits, total, facets, cursor, total_is_estimate=not exact,
                        facets_are_estimates=not exact and params.facets)


def _counts(session: Session, principal: Principal, rows: list, vis,
            want: bool) -> tuple[int, dict[str, list[tuple[str, int]]], bool]:
    """Total and facets from candidate rows (id, severity, status, year, ...), newest id
    first, at most CANDIDATES + 1 of them (the extra one only says there are more).
    Severity, status and year are already in the rows; the link tables are joined from
    the candidate ids (one array parameter). Beyond the bound: extrapolated by id density
    (the candidates are every visible match from the oldest candidate's id up; scaled to
    the caller's visible id span), built only from visible rows, so embargoed rows cannot
    move a number. Returns (total, facets, exact)."""
    exact = len(rows) <= CANDIDATES
    rows = rows[:CANDIDATES]
    total = len(rows)
    facets: dict[str, list[tuple[str, int]]] = {}
    if want:
        counts = {name: Counter(str(r[col]) for r in rows)
                  for col, name in ((1, "severity"), (2, "status"), (3, "year"))}
        facets = {name: list(counts.get(name, {}).items()) for name in FACETS}
        if rows:
            ids = [r[0] for r in rows]
            sqlite = session.get_bind().dialect.name == "sqlite"
            for name, value, count in session.connection().execute(
                    _candidate_link_facets(principal, sqlite),
                    {"candidate_ids": json.dumps(ids) if sqlite else ids}):
                facets[name].append((str(value), count))
    if not exact:
        lo, hi = _visible_span(session, vis)
        factor = (hi - lo + 1) / (hi - rows[-1][0] + 1)
        total = max(CANDIDATES + 1, round(total * factor))
        facets = {name: [(v, max(1, round(c * factor))) for v, c in values]
                  for name, values in facets.items()}
    for values in facets.values():
        values.sort(key=lambda vc: (-vc[1], vc[0]))
    return total, facets, exact
