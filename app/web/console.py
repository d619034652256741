"""The coordinator console: incident search, one incident with its triage actions (move,
merge, embargo, link and unlink reports), the moderation queue. Every read and write goes
through the incidents services, as the API's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlencode

import anyio
import litestar
from litestar import Request, Response
from litestar.response import Redirect, Template

from app.auth.principal import Principal
from app.db import session_scope
from app.errors import DomainError, Invalid
from app.http import get
from app.ids import MAX_ID
from app.incidents import service
from app.incidents.search import SearchParams, search_incidents
from app.incidents.tables import INCIDENT_STATUSES
from app.markdown import render_markdown
from app.web.auth import auth_handlers, signed_in_router
from app.web.pages import page
from app.web.problems import problem_of

FILTERS = ("lab", "model", "harm_type", "severity", "status", "year")
FACET_LABELS = {"status": "Status", "severity": "Severity", "harm_type": "Harm type",
                "lab": "Lab", "model": "Model", "year": "Year"}
PAGE_SIZE = 20
# ?done= carries a code, never text: only these messages can appear as the notice, so a
# crafted link cannot put words in the console's mouth. Unknown codes show nothing.
DONE = {**{f"moved-{status}": f"Moved to {status}." for status in INCIDENT_STATUSES},
        "embargo-lifted": "Embargo lifted."}
# Codes that carry a report number: digits only, so the notice says nothing but the number.
REPORT_DONE = re.compile(r"report-(linked|unlinked)-([1-9][0-9]{0,18})")


def done_message(code: str | None, incident=None) -> str | None:
    match = REPORT_DONE.fullmatch(code or "")
    if match:
        return f"Report {match.group(2)} {match.group(1)}."
    if code == "duplicate" and incident is not None and incident.duplicate_of:
        return f"Marked as duplicate of #{incident.duplicate_of}; its reports moved there."
    if code == "embargoed" and incident is not None and incident.embargo_until:
        return f"Embargoed until {incident.embargo_until:%Y-%m-%d %H:%M} UTC."
    return DONE.get(code or "")


def _query(filters: dict, **changes) -> str:
    merged = {k: v for k, v in {**filters, **changes}.items() if v not in (None, "")}
    return "?" + urlencode(merged) if merged else "?"


def _search_view(principal: Principal, q: str, filters: dict, sort: str,
                 cursor: str | None) -> dict:
    params = SearchParams(q=q or None, sort=sort, cursor=cursor, limit=PAGE_SIZE,
                          **{k: (int(v) if k == "year" else v) for k, v in filters.items()})
    with session_scope(write=False) as session:
        result = search_incidents(session, principal, params)
    base = {"q": q, "sort": sort if q else None, **filters}
    facets = []
    for name, values in result.facets.items():
        options = []
        for value, count in values:
            active = str(filters.get(name, "")) == str(value)
            options.append({"value": value, "count": count, "active": active,
                            "url": _query(base, **{name: None if active else value})})
        facets.append({"name": name, "label": FACET_LABELS.get(name, name), "options": options})
    active = [{"name": FACET_LABELS.get(k, k), "value": v, "url": _query(base, **{k: None})}
              for k, v in filters.items()]
    return {"hits": result.hits, "total": result.total, "facets": facets, "active": active,
            "estimate": result.total_is_estimate,
            "next_url": _query(base, cursor=result.next_cursor) if result.next_cursor else None,
            "first_url": _query(base) if cursor else None}


@get("/", name="console_home")
def search_page(principal: Principal, request: Request, q: str = "", sort: str = "relevance",
                cursor: str | None = None, lab: str | None = None, model: str | None = None,
                harm_type: str | None = None, severity: str | None = None,
                status: str | None = None, year: str | None = None) -> Template:
    """Incident search for coordinators (they see embargoed and unmoderated incidents)."""
    principal.require_coordinator()
    raw = {"lab": lab, "model": model, "harm_type": harm_type, "severity": severity,
           "status": status, "year": year}
    filters = {k: v.strip() for k, v in raw.items() if v and v.strip()}
    context = {"me": principal, "q": q, "sort": sort, "filters": filters, "error": None}
    try:
        if "year" in filters and not filters["year"].isdigit():
            raise Invalid("year is a number like 2019", field="year")
        context.update(_search_view(principal, q.strip(), filters, sort, cursor))
    except DomainError as exc:
        context.update(error=problem_of(exc), hits=[], facets=[], active=[], total=0,
                       next_url=None, first_url=None, estimate=False)
        return page("console/search.html", status=exc.status, **context)
    return page("console/search.html", **context)


@get("/moderation", name="console_moderation")
def moderation_page(principal: Principal, cursor: str | None = None,
                    done: str | None = None) -> Template:
    """Anonymous and signed-in submissions waiting for a coordinator, the newest arrival
    first (not the newest occurrence: a report of an old incident arrives today too)."""
    principal.require_coordinator()
    with session_scope(write=False) as session:
        result = search_incidents(session, principal, SearchParams(
            status="submitted", sort="received", cursor=cursor, limit=PAGE_SIZE, facets=False))
        reads = [h.incident for h in result.hits]
    next_url = "?" + urlencode({"cursor": result.next_cursor}) if result.next_cursor else None
    return page("console/moderation.html", me=principal, items=reads, total=result.total,
                estimate=result.total_is_estimate, next_url=next_url,
                done=done_message(done))


def _detail_context(principal: Principal, incident_id: int) -> dict:
    with session_scope(write=False) as session:
        incident = service.get_incident(session, principal, incident_id)
        read = service.read_incident(session, principal, incident)
        reports = [{"id": r.id, "url": r.url, "submitted_at": r.submitted_at,
                    # Only http(s) becomes a link: a javascript: or data: URL stays text.
                    "link": r.url if (r.url or "").lower().startswith(("https://", "http://"))
                    else None,
                    "html": render_markdown(r.text)}
                   for r in service.list_reports(session, principal, incident.id)] \
            if incident.status != "duplicate" else []
    moves = sorted(service.MOVES.get(read.status, set()) - {"duplicate"})
    return {"me": principal, "incident": read, "reports": reports, "moves": moves,
            "can_duplicate": "duplicate" in service.MOVES.get(read.status, set()),
            "summary_html": read.summary_html or "", "error": None, "typed": {}}


@get("/incidents/{incident_id:int}", name="console_incident")
def incident_page(principal: Principal, incident_id: int, done: str | None = None) -> Template:
    principal.require_coordinator()
    context = _detail_context(principal, incident_id)
    return page("console/incident.html", done=done_message(done, context["incident"]),
                **context)


def _version(form) -> int | None:
    raw = str(form.get("version", "")).strip()
    if not raw.isdigit():
        raise Invalid("the form lost its version; reload the page", field="version")
    return int(raw)


def _embargo_until(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise Invalid("give a date and time, e.g. 2026-12-31T12:00 (UTC)",
                      field="embargo_until") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _report_id(form) -> int:
    raw = str(form.get("report_id", "")).strip().lstrip("#")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID):
        raise Invalid("give a report number, e.g. 12 (each report shows its number)",
                      field="report_id")
    return int(raw)


def _act(principal: Principal, incident_id: int, action: str, form) -> str:
    """Runs one triage action; returns the code (DONE) of what to tell the coordinator."""
    with session_scope() as session:
        if action in ("link", "unlink"):
            # The same service as POST /links and DELETE /links/{report_id}.
            report_id = _report_id(form)
            service.link_report(session, principal, incident_id, report_id,
                                linked=action == "link")
            return f"report-{action}ed-{report_id}"
        if action == "transition":
            to = str(form.get("to", ""))
            dup = str(form.get("duplicate_of", "")).strip().lstrip("#")
            if to == "duplicate" and not dup.isdigit():
                raise Invalid("name the incident number this one duplicates",
                              field="duplicate_of")
            incident = service.transition_incident(
                session, principal, incident_id, to, _version(form),
                str(form.get("reason", "")).strip()[:2000] or None,
                int(dup) if to == "duplicate" else None)
            return "duplicate" if to == "duplicate" else f"moved-{incident.status}"
        if action == "embargo":
            lift = form.get("lift") is not None
            until = None if lift else _embargo_until(str(form.get("embargo_until", "")))
            service.set_embargo(session, principal, incident_id, until, _version(form))
            return "embargo-lifted" if lift else "embargoed"
    raise Invalid(f"unknown action {action!r}", field="action")


async def _triage(request: Request, principal: Principal, incident_id: int,
                  action: str) -> Response:
    form = await request.form()
    try:
        message = await anyio.to_thread.run_sync(_act, principal, incident_id, action, form)
    except DomainError as exc:
        # A missing incident is the page's own 404; a report number that names no report
        # is a mistake in the form, shown there with what was typed.
        if exc.status in (401, 403) or (exc.status == 404 and exc.field != "report_id"):
            raise
        # Show the incident as it is now, the refusal, and what was typed, unchanged.
        context = await anyio.to_thread.run_sync(_detail_context, principal, incident_id)
        context.update(error=problem_of(exc), typed={k: form.get(k) for k in form})
        return page("console/incident.html", status=exc.status, done=None, **context)
    back = str(form.get("back", ""))
    target = "/console/moderation" if back == "moderation" else f"/console/incidents/{incident_id}"
    return Redirect(f"{target}?{urlencode({'done': message})}", status_code=303)


@litestar.post("/incidents/{incident_id:int}/transition", status_code=303)
async def transition_action(request: Request, principal: Principal,
                            incident_id: int) -> Response:
    principal.require_coordinator()
    return await _triage(request, principal, incident_id, "transition")


@litestar.post("/incidents/{incident_id:int}/embargo", status_code=303)
async def embargo_action(request: Request, principal: Principal, incident_id: int) -> Response:
    principal.require_coordinator()
    return await _triage(request, principal, incident_id, "embargo")


@litestar.post("/incidents/{incident_id:int}/link", status_code=303)
async def link_action(request: Request, principal: Principal, incident_id: int) -> Response:
    """Link a report (of any incident, by its number) to this one too."""
    principal.require_coordinator()
    return await _triage(request, principal, incident_id, "link")


@litestar.post("/incidents/{incident_id:int}/unlink", status_code=303)
async def unlink_action(request: Request, principal: Principal, incident_id: int) -> Response:
    """Unlink one of this incident's reports; the report and its other links stay."""
    principal.require_coordinator()
    return await _triage(request, principal, incident_id, "unlink")


def console_handlers() -> list:
    """Route handlers of signing in and of the console, registered by app.web."""
    from app.web.people import console_people_handlers

    return [*auth_handlers(),
            signed_in_router("/console", [search_page, moderation_page, incident_page,
                                          transition_action, embargo_action, link_action,
                                          unlink_action, *console_people_handlers()])]
