"""Public incident pages: search with facets, one incident, and the report form (moderated
and rate-limited exactly as POST /api/v1/incidents is: same schema, service and bucket)."""

from __future__ import annotations

from datetime import date
from urllib.parse import quote_plus

import anyio
import litestar
import pydantic
from litestar import Request
from litestar.response import Redirect, Template

from app.auth.principal import Principal
from app.db import session_scope
from app.errors import DomainError
from app.http import PUBLIC, get
from app.incidents import service
from app.incidents.api import ANON_PER_HOUR, MAX_BODY, anonymous_wait
from app.incidents.schemas import IncidentCreate
from app.incidents.search import SearchParams, SearchResult, repair_query, search_incidents
from app.markdown import stored_html
from app.web.pages import page

FACET_NAMES = {"lab": "Lab", "model": "Model", "harm_type": "Harm type",
               "severity": "Severity", "status": "Status", "year": "Year"}
SEVERITIES = ("low", "medium", "high", "critical")


@get("/incidents", opt=PUBLIC, name="incidents")
def incidents_page(principal: Principal, q: str | None = None, lab: str | None = None,
                   model: str | None = None, harm_type: str | None = None,
                   severity: str | None = None, status: str | None = None,
                   year: int | None = None, occurred_from: date | None = None,
                   occurred_to: date | None = None, sort: str = "relevance",
                   cursor: str | None = None) -> Template:
    given = {"lab": lab, "model": model, "harm_type": harm_type, "severity": severity,
             "status": status, "year": year}
    chosen = {k: v for k, v in given.items() if v not in (None, "")}
    # A search box people type into: search what can be searched (repair_query), never a
    # 422 page for a stray quote or a lone symbol. The API keeps its 422s.
    searched, notes = repair_query(q) if q and q.strip() else (None, [])
    params = SearchParams(q=searched, occurred_from=occurred_from, occurred_to=occurred_to,
                          sort=sort if searched else "date", cursor=cursor, limit=20,
                          **chosen)
    if q and q.strip() and searched is None:
        notes.append("nothing in it to search for: use words (letters or digits)")
        result = SearchResult(hits=[], total=0, facets={}, next_cursor=None)
    else:
        with session_scope(write=False) as session:
            result = search_incidents(session, principal, params)
    hint = None
    if notes:
        hint = f"Searched for {searched or 'nothing'}: " + "; ".join(notes) + "."
    base = {k: v for k, v in dict(q=q, sort=sort if q else None, occurred_from=occurred_from,
                                  occurred_to=occurred_to, **chosen).items() if v}

    # Hundreds of facet links share the base query: quote it once (same URLs as
    # urlencode(base | change) without its empty values).
    quoted = {k: quote_plus(str(v)) for k, v in base.items()}

    def link(**change) -> str:
        query = dict(quoted)
        for k, v in change.items():
            if v in (None, ""):
                query.pop(k, None)
            else:
                query[k] = quote_plus(str(v))
        return "/incidents" + ("?" + "&".join(f"{k}={v}" for k, v in query.items())
                               if query else "")

    facets = [{"name": name, "label": FACET_NAMES.get(name, name), "chosen": chosen.get(name),
               "values": [{"value": v, "count": c, "href": link(**{name: v, "cursor": None}),
                           "active": str(chosen.get(name)) == str(v)} for v, c in values],
               "clear": link(**{name: None, "cursor": None})}
              for name, values in result.facets.items()]
    return page("incidents.html", result=result, q=q or "", sort=sort, facets=facets,
                hint=hint,
                occurred_from=occurred_from, occurred_to=occurred_to, chosen=chosen,
                next_href=link(cursor=result.next_cursor) if result.next_cursor else None)


@get("/incidents/{incident_id:int}", opt=PUBLIC, name="incident")
def incident_page(principal: Principal, incident_id: int) -> Template | Redirect:
    with session_scope(write=False) as session:
        incident = service.get_incident(session, principal, incident_id)
        if incident.status == "duplicate":
            return Redirect(f"/incidents/{incident.duplicate_of}", status_code=303)
        read = service.read_incident(session, principal, incident)
        # The reports' HTML was rendered when they were written (app.markdown).
        reports = [(r, stored_html(r, "text"))
                   for r in service.reports_of_incident(session, incident)]
        return page("incident.html", incident=read, reports=reports)


def _form_values(form) -> dict:
    return {"title": form.get("title", ""), "summary": form.get("summary", ""),
            "occurred": form.get("occurred", ""), "severity": form.get("severity", ""),
            "harm_types": form.getall("harm_types", []) if hasattr(form, "getall") else [],
            "labs": form.get("labs", ""), "models": form.get("models", ""),
            "reporter_contact": form.get("reporter_contact", ""),
            "report_text": form.get("report_text", ""), "report_url": form.get("report_url", "")}


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.replace("\n", ",").split(",") if x.strip()]


def _to_create(values: dict) -> IncidentCreate:
    """The API's own input schema, so the form accepts exactly what the API accepts."""
    reports = []
    if values["report_text"].strip() or values["report_url"].strip():
        reports.append({"text": values["report_text"], "url": values["report_url"] or None})
    return IncidentCreate.model_validate({
        "title": values["title"], "summary": values["summary"],
        "occurred": values["occurred"] or None, "severity": values["severity"] or None,
        "harm_types": values["harm_types"], "labs": _split(values["labs"]),
        "models": _split(values["models"]),
        "reporter_contact": values["reporter_contact"] or None, "reports": reports})


def _report_form(values: dict, errors: list[dict], status: int = 200) -> Template:
    return page("report.html", status=status, values=values, errors=errors,
                harm_types=sorted(service.taxonomy()[1]), severities=SEVERITIES,
                fields_in_error={e["field"].split(".")[0].split("[")[0] for e in errors})


@get("/incidents/report", opt=PUBLIC, name="report_form")
def report_form(submitted: int | None = None) -> Template:
    values = _form_values({})
    return page("report.html", values=values, errors=[], submitted=submitted,
                harm_types=sorted(service.taxonomy()[1]), severities=SEVERITIES,
                fields_in_error=set())


def _submit(principal: Principal, data: IncidentCreate) -> int:
    with session_scope() as session:
        return service.submit_incident(session, principal, data).id


@litestar.post("/incidents/report", opt=PUBLIC, name="report_submit",
               request_max_body_size=MAX_BODY)
async def report_submit(request: Request, principal: Principal) -> Template | Redirect:
    values = _form_values(await request.form())
    try:
        data = _to_create(values)
    except pydantic.ValidationError as exc:
        errors = [{"field": _field_name(e["loc"]), "reason": e["msg"]} for e in exc.errors()]
        return _report_form(values, errors, 422)
    if principal.is_anonymous:
        wait = await anyio.to_thread.run_sync(anonymous_wait, request)
        if wait:
            refused = _report_form(values, [{"field": "form", "reason": (
                f"at most {ANON_PER_HOUR} anonymous reports per hour from one address; "
                f"please try again in {int(wait // 60) + 1} minutes")}], 429)
            refused.headers = {**refused.headers, "Retry-After": str(max(1, int(wait) + 1))}
            return refused
    try:
        await anyio.to_thread.run_sync(_submit, principal, data)
    except DomainError as exc:
        return _report_form(values, [{"field": exc.field or "form", "reason": str(exc)}],
                            exc.status)
    return Redirect("/incidents/report?submitted=1", status_code=303)


def _field_name(loc: tuple) -> str:
    # Report fields are shown as their own inputs (report_text, report_url).
    if loc and loc[0] == "reports" and len(loc) >= 3:
        return {"text": "report_text", "url": "report_url"}.get(str(loc[2]), "report_text")
    return str(loc[0]) if loc else "form"


def incident_handlers() -> list:
    return [incidents_page, incident_page, report_form, report_submit]
