"""Public pages: home, the model list, model cards (with live evaluation progress), labs."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from urllib.parse import urlencode

import anyio
import litestar
from litestar import Request
from litestar.response import ServerSentEvent, Template
from sqlalchemy import desc, literal_column
from sqlalchemy.orm import aliased
from sqlmodel import select

from app.access import visible_incidents, visible_runs
from app.agreements.service import list_agreements, read_agreements
from app.auth.principal import Principal
from app.auth.tables import User
from app.db import session_scope
from app.evals import hf_export
from app.evals import service as evals
from app.evals.tables import ACTIVE, EvalResult, EvalRun
from app.http import PUBLIC, get
from app.incidents.search import SearchParams, search_incidents
from app.incidents.service import read_incidents
from app.incidents.tables import Incident, IncidentLab, IncidentModel
from app.labs.service import get_lab
from app.models.service import (
    find_model,
    list_model_names,
    list_models,
    model_summaries,
    read_model,
)
from app.models.tables import CARD_SECTIONS
from app.norms import service as norms
from app.pagination import PageRequest
from app.plans.service import list_plans, read_plans, stages_of_plans
from app.web import charts
from app.web.pages import page

MODELS_PAGE = 50  # /models shows this many a page, then a "next" link
HOME_MODELS = 200  # the home page lists at most this many, then links to /models
LAB_MODELS = 200  # and a lab's page, then links to /models?lab=


def _recent_incidents(session, principal: Principal, limit: int = 5, **filters) -> list:
    return search_incidents(session, principal, SearchParams(
        sort="date", limit=limit, facets=False, **filters)).hits


def _released_stages(plans) -> list[dict]:
    out = [{"plan": p, "stage": s} for p in plans for s in p.stages if s.status == "released"]
    return sorted(out, key=lambda x: (x["stage"].actual_date or x["plan"].updated_at.date()),
                  reverse=True)


def _active_runs():
    """WHERE status is queued or running, with the statuses written into the SQL: SQLite
    plans a bound IN (?, ?) as a scan of every run (its statistics see one status,
    "succeeded", on all of them), but uses the status index (or the partial index of
    active runs) for literals."""
    return EvalRun.status.in_([literal_column(f"'{status}'") for status in ACTIVE])


def _evaluating_models(session, principal: Principal, model_ids) -> set[int]:
    """Which of these models have a queued or running evaluation the caller may see. Read
    from the active runs (few, found by the status index) rather than from the shown
    models' runs (every run they ever had, each checked for visibility)."""
    ids = set(model_ids)
    if not ids:
        return set()
    return ids & set(session.exec(select(EvalRun.model_id).where(
        _active_runs(), visible_runs(principal))).all())


@get("/", opt=PUBLIC, name="home")
def home(principal: Principal) -> Template:
    with session_scope(write=False) as session:
        plans, _ = list_plans(session, principal, PageRequest(limit=100))
        models, more = list_model_names(session, principal, HOME_MODELS)
        return page("home.html", releases=_released_stages(read_plans(session, plans))[:8],
                    incidents=_recent_incidents(session, principal), models=models,
                    more_models=more,
                    busy=_evaluating_models(session, principal, [m.id for m in models]))


@get("/models", opt=PUBLIC, name="models")
def models_page(principal: Principal, q: str | None = None, lab: str | None = None,
                cursor: str | None = None) -> Template:
    with session_scope(write=False) as session:
        # One page at a time, like GET /api/v1/models; the name filter is in the query.
        rows, next_cursor = list_models(session, principal,
                                        PageRequest(cursor=cursor, limit=MODELS_PAGE),
                                        lab=lab or None, q=q or None, summary=True)
        models = model_summaries(session, rows)
        query = {k: v for k, v in (("q", q), ("lab", lab)) if v}
        return page("models.html", models=models, q=q or "", lab=lab or "",
                    first_page=not cursor,
                    first_href="/models" + ("?" + urlencode(query) if query else ""),
                    next_href="/models?" + urlencode(query | {"cursor": next_cursor})
                    if next_cursor else None,
                    busy=_evaluating_models(session, principal, [m.id for m in models]))


def _latest(results: list[dict], suite: str) -> dict | None:
    rows = [r for r in results if r["suite_id"] == suite]
    return rows[-1] if rows else None


def _eval_rows(ckpt: dict) -> list[dict]:
    """Measured metrics of one checkpoint beside what the lab reported for the same suite."""
    reported: dict[tuple[str, str], float] = {}
    for r in ckpt["reported"]:
        for k, v in r["metrics"].items():
            reported[(r["suite_id"], k)] = v
    rows = []
    for r in ckpt["measured"]:
        if r["suite_id"].endswith("_transfer"):
            continue
        for k, v in r["metrics"].items():
            if k.endswith(("_ci_low", "_ci_high")):
                continue
            rows.append({"suite": r["suite"], "metric": k, "measured": v,
                         "reported": reported.pop((r["suite_id"], k), None),
                         "provenance": r["provenance"], "current": r["current"]})
    for (suite, k), v in reported.items():
        rows.append({"suite": suite, "metric": k, "measured": None, "reported": v,
                     "provenance": None, "current": True})
    return rows


def _transfer(checkpoints: list[dict]) -> dict | None:
    for ckpt in reversed(checkpoints):
        result = _latest(ckpt["measured"], evals.TRANSFER_SUITE)
        details = (result or {}).get("metrics") and _details(result)
        if details and details.get("labels") and details.get("matrix"):
            values = [v for row in details["matrix"] for v in row]
            low, high = min(values), max(values)
            return {"anchor": ckpt["name"], "labels": details["labels"],
                    "rows": [[(v, charts.heat_level(v, low, high)) for v in row]
                             for row in details["matrix"]],
                    "method": details.get("method"), "result_id": result["id"]}
    return None


def _details(result: dict) -> dict:
    return result.get("details") or {}


def _bias(checkpoints: list[dict]) -> list[dict]:
    rows = []
    for ckpt in checkpoints:
        result = _latest(ckpt["measured"], "bias_association")
        if not result:
            continue
        m = result["metrics"]
        for key in sorted(k for k in m if k.endswith("_association")):
            low, high = m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
            if low is None or high is None:
                continue
            rows.append({"checkpoint": ckpt["name"], "category": key.removesuffix(
                "_association"), "mean": m[key], "low": low, "high": high})
    if rows:
        lo = min(0.0, min(r["low"] for r in rows))
        hi = max(r["high"] for r in rows)
        for r in rows:
            r["bar"] = charts.ci_bar(r["mean"], r["low"], r["high"], lo, hi)
    return rows


def card_context(session, principal: Principal, lab: str, model_slug: str) -> dict:
    model = find_model(session, principal, f"{lab}/{model_slug}")
    read = read_model(session, model)
    ref = f"{read.lab}/{read.slug}"
    live = hf_export.live_card(session, principal, model.id)
    # details (the transfer matrix) are not in the live card's rows; read them for the
    # results the live card already chose (and so filtered for visibility).
    ids = [r["id"] for c in live["checkpoints"] for r in c["measured"]
           if r["suite_id"] == evals.TRANSFER_SUITE]
    details = dict(session.exec(select(EvalResult.id, EvalResult.details).where(
        EvalResult.id.in_(ids))).all()) if ids else {}
    for ckpt in live["checkpoints"]:
        for r in ckpt["measured"]:
            r["details"] = details.get(r["id"], {})
    plans, _ = list_plans(session, principal, PageRequest(limit=20), model=ref)
    agreements, _ = list_agreements(session, principal, PageRequest(limit=100), lab=read.lab)
    agreements = [a for a in read_agreements(session, principal, agreements)
                  if ref in a.scope.models]
    runs = [{**run, "checkpoint": c["name"]} for c in live["checkpoints"] for run in c["runs"]]
    stages = stages_of_plans(session, [p.id for p in plans])  # for the plans and verdicts
    reads = read_plans(session, plans, stages)
    return {
        "model": read, "ref": ref, "sections": [(s, read.card_html.get(s, "")) for s in
                                                CARD_SECTIONS if read.card_html.get(s)],
        "live": live, "plans": reads,
        "compliance": {p.id: norms.compliance_of_plan(session, principal, p, stages[p.id])
                       for p in plans},
        "eval_rows": [(c, _eval_rows(c)) for c in live["checkpoints"]],
        "model_reported": live["reported"],
        # Drawn when the results landed (app/evals/charts.py); read here by the digest of
        # this reader's own series, drawn now only where no stored chart matches it.
        "charts": charts.metric_charts(live["checkpoints"],
                                       charts.stored_svgs(session, model.id)),
        "transfer": _transfer(live["checkpoints"]), "bias": _bias(live["checkpoints"]),
        "runs": runs, "active": any(r["status"] in ACTIVE for r in runs),
        "agreements": agreements,
        "incidents": _linked_incidents(session, principal, IncidentModel, "model_id",
                                       model.id),
    }


@get("/models/{lab:str}/{model:str}", opt=PUBLIC, name="model_card")
def model_card(principal: Principal, lab: str, model: str) -> Template:
    with session_scope(write=False) as session:
        return page("card.html", **card_context(session, principal, lab, model))


def _run_states(principal: Principal, model_id: int) -> list[dict]:
    with session_scope(write=False) as session:
        rows = session.exec(select(EvalRun).where(
            EvalRun.model_id == model_id, visible_runs(principal))
            .order_by(desc(EvalRun.id)).limit(50)).all()
        # The card shows the latest run per checkpoint and suite; so does the stream.
        latest: dict[tuple[int, str], EvalRun] = {}
        for r in rows:
            latest.setdefault((r.checkpoint_id, r.suite_id), r)
        return [{"id": r.id, "checkpoint_id": r.checkpoint_id, "suite": r.suite_id,
                 "status": r.status, "progress": round(r.progress, 3)}
                for r in sorted(latest.values(), key=lambda r: r.id)]


def _still_active(principal: Principal) -> bool:
    if principal.user_id is None:
        return True
    with session_scope(write=False) as session:
        user = session.get(User, principal.user_id)
        return user is not None and user.deactivated_at is None


STREAM_SECONDS = 600  # a client reconnects (EventSource does) after this


@litestar.get("/models/{lab:str}/{model:str}/progress", opt=PUBLIC, name="model_progress")
async def model_progress(principal: Principal, lab: str, model: str,
                         request: Request) -> ServerSentEvent:
    """Server-sent events: the model's evaluation runs whenever one of them changes."""
    def resolve() -> int:
        with session_scope(write=False) as session:
            return find_model(session, principal, f"{lab}/{model}").id

    model_id = await anyio.to_thread.run_sync(resolve)

    async def events():
        last = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_SECONDS
        while loop.time() < deadline:
            # Deactivation ends a signed-in stream at the next poll, as it ends requests.
            if not await anyio.to_thread.run_sync(_still_active, principal):
                return
            states = await anyio.to_thread.run_sync(_run_states, principal, model_id)
            if states != last:
                last = states
                yield json.dumps({"runs": states})
            await asyncio.sleep(1.0)

    return ServerSentEvent(events(), event_type="runs", retry_duration=2000)


def _linked_incidents(session, principal: Principal, link, key: str, value: int,
                      limit: int = 20) -> list:
    """The latest incidents linked to one lab or model (`link` the link table, whose
    column `key` is `value`) that the caller may see, newest first as the search's date order gives
    them, duplicates left out. Driven from the links (indexed by lab and by model) rather
    than the search's slug filter, which on SQLite walks every incident by date before a
    lab or model with few incidents fills its page. `link` is aliased: the visibility
    clause has an EXISTS over incident_lab of its own, which must not correlate to it."""
    link = aliased(link)
    rows = session.exec(select(Incident).join(link, link.incident_id == Incident.id)
                        .where(getattr(link, key) == value, Incident.status != "duplicate",
                               visible_incidents(principal))
                        .order_by(desc(Incident.occurred), desc(Incident.id)).limit(limit)).all()
    return [SimpleNamespace(incident=r, snippet=None)
            for r in read_incidents(session, principal, list(rows), html=False)]


@get("/labs/{lab:str}", opt=PUBLIC, name="lab")
def lab_page(principal: Principal, lab: str) -> Template:
    with session_scope(write=False) as session:
        row = get_lab(session, lab)
        models, more_models = list_model_names(session, principal, LAB_MODELS, lab=lab)
        plans, _ = list_plans(session, principal, PageRequest(limit=100), lab=lab)
        agreements, _ = list_agreements(session, principal, PageRequest(limit=100), lab=lab)
        return page("lab.html", lab=row, models=models,
                    more_models=more_models, plans=read_plans(session, plans),
                    agreements=read_agreements(session, principal, agreements),
                    incidents=_linked_incidents(session, principal, IncidentLab,
                                                        "lab_id", row.id))


def public_handlers() -> list:
    from app.web.feeds import feed_handlers
    from app.web.public_incidents import incident_handlers
    from app.web.public_plans import plan_handlers
    from app.web.transparency import transparency_handlers

    return [home, models_page, model_card, model_progress, lab_page, *plan_handlers(),
            *incident_handlers(), *feed_handlers(), *transparency_handlers()]


