"""Atom feeds: public incidents, and stage releases with plan filings (from the event log)."""

from __future__ import annotations

from litestar import Request, Response
from sqlalchemy import desc
from sqlmodel import select

from app.access import visible_events, visible_plans
from app.auth.principal import ANONYMOUS
from app.db import session_scope
from app.events.tables import Event
from app.http import PUBLIC, get
from app.incidents.search import SearchParams, search_incidents
from app.plans.tables import PlanRevision, ReleasePlan
from app.timeutil import utcnow
from app.web.pages import ENV

ATOM = "application/atom+xml"
RELEASE_ACTIONS = ("filed", "stage_released")


def _atom(request: Request, feed: dict) -> Response:
    # Atom readers resolve links against the feed's own address.
    body = ENV.get_template("feed.atom.xml").render(base=str(request.base_url).rstrip("/"),
                                                    **feed)
    return Response(body, media_type=ATOM, headers={"X-Content-Type-Options": "nosniff"})


@get("/feeds/incidents.atom", opt=PUBLIC, name="feed_incidents")
def incidents_feed(request: Request) -> Response:
    # Feeds are for everyone: always built as the anonymous public sees them.
    with session_scope(write=False) as session:
        hits = search_incidents(session, ANONYMOUS, SearchParams(sort="date", limit=50,
                                                                 facets=False)).hits
    entries = [{"id": f"/incidents/{h.incident.id}", "title": h.incident.title,
                "link": f"/incidents/{h.incident.id}", "updated": h.incident.updated_at
                if hasattr(h.incident, "updated_at") else h.incident.occurred,
                "summary": f"{h.incident.severity} · {', '.join(h.incident.harm_types)} · "
                           f"occurred {h.incident.occurred}: {h.incident.summary[:500]}"}
               for h in hits]
    return _atom(request, {"title": "Stagegate: public incidents", "self_href": "/feeds/incidents.atom",
                  "alternate": "/incidents", "entries": entries,
                  "updated": max((e["updated"] for e in entries), default=utcnow())})


@get("/feeds/releases.atom", opt=PUBLIC, name="feed_releases")
def releases_feed(request: Request) -> Response:
    with session_scope(write=False) as session:
        events = session.exec(select(Event).where(
            visible_events(ANONYMOUS), Event.entity_type == "plan",
            Event.action.in_(RELEASE_ACTIONS)).order_by(desc(Event.id)).limit(50)).all()
        # The plans and revisions the 50 events name, in one query each (visibility in
        # the plans' query), not two lookups per event.
        wanted = {}
        for event in events:
            try:
                wanted[event.id] = (int(event.entity_id), int(event.data.get("revision", 0)))
            except (TypeError, ValueError):
                continue
        plan_ids = {p for p, _ in wanted.values()}
        shown = {p.id: p for p in session.exec(select(ReleasePlan).where(
            ReleasePlan.id.in_(plan_ids), visible_plans(ANONYMOUS)))} if plan_ids else {}
        revisions = {(r.plan_id, r.number): r for r in session.exec(select(PlanRevision).where(
            PlanRevision.plan_id.in_(shown),
            PlanRevision.number.in_({n for _, n in wanted.values()})))} if shown else {}
        entries = []
        for event in events:
            plan = shown.get(wanted.get(event.id, (None, None))[0])
            revision = revisions.get(wanted.get(event.id))
            if plan is None or revision is None:
                continue
            what = "filed" if event.action != "stage_released" else revision.change
            entries.append({"id": f"/events/{event.id}", "link": f"/plans/{plan.id}",
                            "title": f"{revision.content.get('model')}: {plan.title} — {what}",
                            "updated": event.at,
                            "summary": f"{event.action.replace('_', ' ')} by {event.actor} "
                                       f"(revision {revision.number}, SHA-256 "
                                       f"{revision.digest[:12]})"})
    return _atom(request, {"title": "Stagegate: stage releases and plan filings",
                  "self_href": "/feeds/releases.atom", "alternate": "/",
                  "entries": entries,
                  "updated": max((e["updated"] for e in entries), default=utcnow())})


def feed_handlers() -> list:
    return [incidents_feed, releases_feed]
