"""/api/v1/incidents: submission, triage, duplicates, reports, search and export."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Literal
from urllib.parse import urlencode

from annotated_types import Interval
from litestar import Controller, Request, Response
from litestar.response import Stream

from app import ratelimit
from app.auth.principal import Principal
from app.csvcells import SafeCSV
from app.db import session_scope
from app.errors import Invalid, problem
from app.http import (
    PROBLEM,
    PUBLIC,
    PUBLIC_ETAG,
    delete,
    expected_version,
    get,
    patch,
    post,
    with_etag,
)
from app.ids import Id
from app.incidents import service
from app.incidents.schemas import (
    AcknowledgeIn,
    DuplicateRead,
    EmbargoIn,
    FacetCount,
    IncidentCreate,
    IncidentRead,
    IncidentUpdate,
    LinkIn,
    ReportCreate,
    ReportRead,
    SearchHit,
    SearchPage,
    Severity,
    TransitionIn,
)
from app.incidents.search import SearchParams, search_incidents
from app.incidents.tables import INCIDENT_STATUSES
from app.labs.service import get_lab
from app.markdown import stored_html
from app.models.service import find_model
from app.pagination import decode_cursor, encode_cursor
from app.settings import get_settings
from app.urls import check_http_url

# A public form: at most this many anonymous submissions per client address per hour,
# and no body over this size (413 before any parsing).
ANON_PER_HOUR = 5
MAX_BODY = 256 * 1024

# Filters are typed so an unknown value is a 422 naming the parameter on every list.
Status = Literal[INCIDENT_STATUSES] | None
Year = Annotated[int | None, Interval(ge=1, le=9999)]
Limit = Annotated[int, Interval(ge=1, le=100)]
# The export answers in pages (200 incidents are about 200 KB of JSON): one unbounded
# answer (30 MB at 50,000 incidents) would tie up a connection and the read cache for
# every caller. `Link: rel="next"` names the next page.
EXPORT_PAGE, EXPORT_MAX = 200, 10_000
ExportLimit = Annotated[int, Interval(ge=1, le=EXPORT_MAX)]


def client_address(request: Request) -> str:
    """The client as seen through trusted proxies only (app.ratelimit.client_address)."""
    return ratelimit.client_address(request.client.host if request.client else None,
                                    request.headers.get("x-forwarded-for"),
                                    get_settings().trusted_networks)


def anonymous_wait(request: Request) -> float:
    """Seconds until this client may submit again (0: now). Counted in the database, so
    every server process (the API and the web form alike) shares the limit."""
    return ratelimit.take(f"incident-submit:{client_address(request)}", ANON_PER_HOUR, 3600)


def _read(session, principal, incident) -> Response:
    if incident.status == "duplicate":
        # A duplicate answers 200 with where it went, forever; the Location header lets
        # clients follow it like a redirect without losing the duplicate's own id. Where
        # the caller may not see the target (embargoed, another lab's), only that it was
        # merged: no id, no Location.
        if not service.sees_target(session, principal, incident):
            return Response(DuplicateRead(id=incident.id, duplicate_of=None, location=None))
        location = f"/api/v1/incidents/{incident.duplicate_of}"
        return Response(DuplicateRead(id=incident.id, duplicate_of=incident.duplicate_of,
                                      location=location), headers={"Location": location})
    return with_etag(service.read_incident(session, principal, incident))


class IncidentController(Controller):
    path = "/api/v1/incidents"
    tags = ["incidents"]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @post("/", opt={**PUBLIC, "problems": (429,)}, request_max_body_size=MAX_BODY)
    def submit_incident(self, data: IncidentCreate, request: Request,
                        principal: Principal) -> Response:
        """Signed in or anonymous; lands in the moderation queue as `submitted`."""
        if principal.is_anonymous:
            wait = anonymous_wait(request)
            if wait:
                body = problem(429, "Too many requests",
                               f"at most {ANON_PER_HOUR} anonymous submissions per hour; "
                               "sign in or retry later", instance=request.url.path)
                return Response(body, status_code=429, media_type=PROBLEM,
                                headers={"Retry-After": str(math.ceil(wait))})
        with session_scope() as session:
            incident = service.submit_incident(session, principal, data)
            return with_etag(service.read_incident(session, principal, incident), 201)

    @get("/", opt=PUBLIC)
    def list_incidents(self, principal: Principal, lab: str | None = None,
                       model: str | None = None, harm_type: str | None = None,
                       severity: Severity | None = None, status: Status = None,
                       year: Year = None, occurred_from: date | None = None,
                       occurred_to: date | None = None, cursor: str | None = None,
                       limit: Limit = 20) -> SearchPage:
        """Newest first; the same filters and facets as search, without a query."""
        return _search(principal, SearchParams(
            lab=lab, model=model, harm_type=harm_type, severity=severity, status=status,
            year=year, occurred_from=occurred_from, occurred_to=occurred_to,
            sort="date", cursor=cursor, limit=limit))

    @get("/search", opt=PUBLIC)
    def search_incidents(self, principal: Principal, q: str | None = None,
                         lab: str | None = None, model: str | None = None,
                         harm_type: str | None = None, severity: Severity | None = None,
                         status: Status = None, year: Year = None,
                         occurred_from: date | None = None, occurred_to: date | None = None,
                         sort: Literal["relevance", "date", "received"] = "relevance",
                         cursor: str | None = None, limit: Limit = 20,
                         facets: bool = True) -> SearchPage:
        """Full text over titles, summaries and report texts: words, "phrases", OR, NOT."""
        return _search(principal, SearchParams(
            q=q, lab=lab, model=model, harm_type=harm_type, severity=severity, status=status,
            year=year, occurred_from=occurred_from, occurred_to=occurred_to, sort=sort,
            cursor=cursor, limit=limit, facets=facets))

    @get("/export", opt={**PUBLIC, "media_types": ("application/json", "text/csv")})
    def export_incidents(self, principal: Principal,
                         format: Literal["json", "csv"] = "json", cursor: str | None = None,
                         limit: ExportLimit = EXPORT_PAGE) -> Stream:
        """What the caller may see, in id order, `limit` incidents an answer; while more
        remain, `Link: <...>; rel="next"` (and `X-Next-Cursor`) name the next page."""
        after = decode_cursor(cursor) or 0
        with session_scope(write=False) as session:
            last, more = service.export_page_end(session, principal, after, limit)
        body = _export_json(principal, after, last) if format == "json" else \
            _export_csv(principal, after, last)
        headers = {"Content-Disposition": f'attachment; filename="incidents.{format}"'}
        if more:
            following = encode_cursor(last)
            query = urlencode({"format": format, "limit": limit, "cursor": following})
            headers |= {"Link": f'</api/v1/incidents/export?{query}>; rel="next"',
                        "X-Next-Cursor": following}
        return Stream(body, media_type="application/json" if format == "json" else "text/csv",
                      headers=headers)

    @get("/{incident_id:int}", opt=PUBLIC_ETAG)
    def get_incident(self, incident_id: Id, principal: Principal) -> Response:
        with session_scope(write=False) as session:
            return _read(session, principal, service.get_incident(session, principal,
                                                                  incident_id))

    @patch("/{incident_id:int}")
    def revise_incident(self, incident_id: Id, data: IncidentUpdate, request: Request,
                        principal: Principal) -> Response[IncidentRead]:
        data.version = expected_version(request, data.version)
        with session_scope() as session:
            incident = service.update_incident(session, principal, incident_id, data)
            return with_etag(service.read_incident(session, principal, incident))

    @post("/{incident_id:int}/transitions", status_code=200)
    def transition_incident(self, incident_id: Id, data: TransitionIn, request: Request,
                            principal: Principal) -> Response:
        with session_scope() as session:
            incident = service.transition_incident(
                session, principal, incident_id, data.to,
                expected_version(request, data.version), data.reason, data.duplicate_of)
            return _read(session, principal, incident)

    @post("/{incident_id:int}/embargo", status_code=200)
    def set_embargo(self, incident_id: Id, data: EmbargoIn, request: Request,
                    principal: Principal) -> Response[IncidentRead]:
        with session_scope() as session:
            incident = service.set_embargo(session, principal, incident_id,
                                           data.embargo_until,
                                           expected_version(request, data.version))
            return with_etag(service.read_incident(session, principal, incident))

    @post("/{incident_id:int}/acknowledge", status_code=200)
    def acknowledge_incident(self, incident_id: Id, data: AcknowledgeIn, request: Request,
                             principal: Principal) -> Response[IncidentRead]:
        """A member of an affected lab acknowledges the incident as real: with a
        coordinator's confirmation, what makes an open incident count against a release.
        403 for anyone else who can see it; 409 naming `status` when it is closed and
        `acknowledged_at` when already acknowledged."""
        with session_scope() as session:
            incident = service.acknowledge_incident(session, principal, incident_id,
                                                    expected_version(request, data.version))
            return with_etag(service.read_incident(session, principal, incident))

    @get("/{incident_id:int}/reports", opt=PUBLIC)
    def list_reports(self, incident_id: Id, principal: Principal) -> list[ReportRead]:
        with session_scope(write=False) as session:
            return [_report(r) for r in service.list_reports(session, principal, incident_id)]

    @post("/{incident_id:int}/reports", request_max_body_size=MAX_BODY)
    def add_report(self, incident_id: Id, data: ReportCreate,
                   principal: Principal) -> ReportRead:
        with session_scope() as session:
            return _report(service.add_report(session, principal, incident_id, data))

    @post("/{incident_id:int}/links", status_code=200)
    def link_report(self, incident_id: Id, data: LinkIn,
                    principal: Principal) -> Response[IncidentRead]:
        with session_scope() as session:
            incident = service.link_report(session, principal, incident_id, data.report_id)
            return with_etag(service.read_incident(session, principal, incident))

    @delete("/{incident_id:int}/links/{report_id:int}")
    def unlink_report(self, incident_id: Id, report_id: Id,
                      principal: Principal) -> Response[IncidentRead]:
        with session_scope() as session:
            incident = service.link_report(session, principal, incident_id, report_id,
                                           linked=False)
            return with_etag(service.read_incident(session, principal, incident))


def _report(report) -> ReportRead:
    read = ReportRead.model_validate(report)
    read.text_html = stored_html(report, "text")
    # Rows stored before URLs were checked on input must not become links either.
    if read.url is not None:
        try:
            check_http_url(read.url)
        except ValueError:
            read.url = None
    return read


def _search(principal: Principal, params: SearchParams) -> SearchPage:
    if params.harm_type is not None and params.harm_type not in service.taxonomy()[1]:
        raise Invalid(f"{params.harm_type!r} is not a harm type of the taxonomy",
                      field="harm_type")
    with session_scope(write=False) as session:
        # Unknown (or hidden) lab and model filters are a 422 like on every other list.
        if params.lab:
            get_lab(session, params.lab)
        if params.model:
            find_model(session, principal, params.model)
        result = search_incidents(session, principal, params)
    return SearchPage(
        items=[SearchHit(incident=h.incident, score=h.score, snippet=h.snippet)
               for h in result.hits],
        total=result.total, next_cursor=result.next_cursor,
        total_is_estimate=result.total_is_estimate,
        facets_are_estimates=result.facets_are_estimates,
        facets={name: [FacetCount(value=v, count=c) for v, c in values]
                for name, values in result.facets.items()})


def _export_json(principal: Principal, after: int, last: int | None):
    yield b"["
    first = True
    with session_scope(write=False) as session:
        for batch in service.export_batches(session, principal, after, last):
            for read in batch:
                yield (b"" if first else b",") + read.model_dump_json().encode()
                first = False
    yield b"]"


CSV_COLUMNS = ("id", "title", "status", "severity", "occurred", "harm_types", "labs",
               "models", "taxonomy_version", "embargo_until", "report_count", "summary")


def _export_csv(principal: Principal, after: int, last: int | None):
    """Every text cell is spreadsheet-safe (app.csvcells): titles and summaries come from
    anonymous submitters and end up opened in spreadsheets."""
    out = SafeCSV()
    out.row(CSV_COLUMNS)
    with session_scope(write=False) as session:
        for batch in service.export_batches(session, principal, after, last):
            for read in batch:
                row = read.model_dump(mode="json")
                out.row([";".join(row[c]) if isinstance(row[c], list) else
                         ("" if row[c] is None else row[c]) for c in CSV_COLUMNS])
            yield out.take()
    yield out.take()
