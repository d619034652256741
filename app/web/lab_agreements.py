"""Lab forms for disclosure agreements: list my labs' agreements, draft one from a
template, and on one agreement's page propose it, sign it for a party lab or terminate it
with a reason. The same services as /api/v1/agreements; a refusal re-renders the page
with its reasons and what was typed."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from urllib.parse import urlencode

import anyio
import litestar
import pydantic
from litestar import Request, Response
from litestar.response import Redirect, Template
from sqlmodel import select

from app.agreements import service
from app.agreements.schemas import ScopeIn, StageRef, TemplateIn
from app.auth.principal import Principal
from app.db import session_scope
from app.errors import DomainError, Invalid
from app.http import get
from app.labs.tables import Lab
from app.pagination import PageRequest
from app.web.forms import _require_lab_user
from app.web.pages import page
from app.web.problems import problem_of

# ?done= carries a code, never text (as in app.web.forms): unknown codes show nothing.
DONE = {"agreement-drafted": "Agreement drafted from the template.",
        "agreement-proposed": "Agreement proposed to its parties.",
        "agreement-signed": "Signed.",
        "agreement-activated": "Signed: every party has signed, so the agreement is active.",
        "agreement-terminated": "Agreement terminated."}
DRAFT_FIELDS = ("template", "discloser", "parties", "models", "stages", "checkpoints",
                "starts", "ends", "title")
MAX_TYPED = 4000


def agreement_done_message(code: str | None) -> str | None:
    return DONE.get(code) if code else None


def _split(raw: str) -> list[str]:
    """Several values in one box: commas, spaces or new lines between them."""
    return [part for part in re.split(r"[\s,]+", raw.strip()) if part]


def _day(raw: str, field: str, *, required: bool) -> datetime | None:
    raw = raw.strip()
    if not raw:
        if required:
            raise Invalid("give a date like 2019-02-14", field=field)
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), time(0), tzinfo=UTC)
    except ValueError:
        raise Invalid(f"{raw[:40]!r} is not a date; give one like 2019-02-14",
                      field=field) from None


def _stage_refs(raw: str) -> list[StageRef]:
    refs = []
    for part in _split(raw):
        plan, _, position = part.partition(":")
        if not (plan.isascii() and plan.isdigit() and position.isascii()
                and position.isdigit()):
            raise Invalid(f"{part[:40]!r}: write stages as PLAN:POSITION, like 12:3",
                          field="scope.stages")
        refs.append(StageRef(plan=int(plan), position=int(position)))
    return refs


def _checkpoint_ids(raw: str) -> list[int]:
    ids = []
    for part in _split(raw):
        if not (part.isascii() and part.isdigit()):
            raise Invalid(f"{part[:40]!r} is not a checkpoint id", field="scope.checkpoints")
        ids.append(int(part))
    return ids


def _template_choices() -> list[dict]:
    choices = []
    for path in sorted(service.TEMPLATES.glob("*.yaml")):
        try:
            tpl = service.load_template(path.stem)
        except DomainError:
            continue
        choices.append({"name": path.stem, "kind": tpl.get("kind", ""),
                        "days": int(tpl.get("duration_days", 90))})
    return choices


def _my_labs(session, principal: Principal) -> list[dict]:
    return [{"id": lab.id, "slug": lab.slug, "name": lab.name, "role": principal.roles[lab.id]}
            for lab in session.exec(select(Lab).where(Lab.id.in_(principal.lab_ids or [-1]))
                                    .order_by(Lab.slug))]


def _list_context(principal: Principal, values: dict | None = None,
                  error: dict | None = None) -> dict:
    with session_scope(write=False) as session:
        labs = _my_labs(session, principal)
        rows: dict[int, object] = {}
        if labs:
            for lab in labs:
                found, _ = service.list_agreements(session, principal,
                                                   PageRequest(limit=200), lab=lab["slug"])
                rows.update((a.id, a) for a in found)
        elif principal.is_coordinator:
            found, _ = service.list_agreements(session, principal, PageRequest(limit=200))
            rows.update((a.id, a) for a in found)
        ordered = [rows[k] for k in sorted(rows, reverse=True)]
        agreements = service.read_agreements(session, principal, ordered)
    templates = _template_choices()
    blank = {k: "" for k in DRAFT_FIELDS}
    blank.update(template=templates[0]["name"] if templates else "",
                 discloser=labs[0]["slug"] if labs else "",
                 starts=date.today().isoformat())
    return {"me": principal, "agreements": agreements, "labs": labs, "templates": templates,
            "values": values or blank, "error": error, "done": None}


@get("/agreements", name="lab_agreements")
def agreements_page(principal: Principal, done: str | None = None) -> Template:
    _require_lab_user(principal)
    context = _list_context(principal)
    context["done"] = agreement_done_message(done)
    return page("forms/agreements.html", **context)


def _field_errors(exc: pydantic.ValidationError, detail: str) -> dict:
    errors = [{"field": ".".join(str(p) for p in e["loc"]) or "form", "reason": e["msg"]}
              for e in exc.errors()]
    return {"status": 422, "title": "Invalid input", "errors": errors, "violations": [],
            "detail": detail, "allowed": None}


@litestar.post("/agreements", status_code=303)
async def draft_from_template_form(request: Request, principal: Principal) -> Response:
    """The form of POST /api/v1/agreements/from-template: the same service, a draft."""
    _require_lab_user(principal)
    form = await request.form()
    values = {k: str(form.get(k, ""))[:MAX_TYPED] for k in DRAFT_FIELDS}
    # Parties: one box (commas) and/or several ticked values.
    parties = _split(values["parties"]) + [str(p)[:63] for p in form.getall("party", [])]
    values["parties"] = ", ".join(dict.fromkeys(parties))

    def run() -> int:
        data = TemplateIn(
            template=values["template"], discloser=values["discloser"],
            parties=list(dict.fromkeys(parties)),
            scope=ScopeIn(models=_split(values["models"]), stages=_stage_refs(values["stages"]),
                          checkpoints=_checkpoint_ids(values["checkpoints"])),
            starts_at=_day(values["starts"], "starts_at", required=True),
            ends_at=_day(values["ends"], "ends_at", required=False),
            title=values["title"].strip() or None)
        with session_scope() as session:
            agreement = service.instantiate_template(
                session, principal, data.template, data.discloser, data.parties, data.scope,
                data.starts_at, data.ends_at, data.confidential_until, data.title)
            return agreement.id

    try:
        agreement_id = await anyio.to_thread.run_sync(run)
    except (DomainError, pydantic.ValidationError) as exc:
        error = _field_errors(exc, "the agreement was not drafted; fix the fields below") \
            if isinstance(exc, pydantic.ValidationError) else problem_of(exc)
        context = await anyio.to_thread.run_sync(_list_context, principal, values, error)
        return page("forms/agreements.html", status=error["status"], **context)
    return Redirect(f"/lab/agreements/{agreement_id}?{urlencode({'done': 'agreement-drafted'})}",
                    status_code=303)


def _agreement_context(principal: Principal, agreement_id: int,
                       typed: dict | None = None) -> dict:
    with session_scope(write=False) as session:
        row = service.get_agreement(session, principal, agreement_id)  # 404 if not visible
        agreement = service.read_agreement(session, principal, row)
        labs = _my_labs(session, principal)
        discloser_id = row.lab_id
    mine = {lab["slug"]: lab for lab in labs}
    discloser = principal.is_member(discloser_id) or principal.is_coordinator
    status = agreement.status
    sign_for = [p.lab for p in agreement.parties if p.lab in mine and not p.signed] \
        if status == "proposed" else []
    return {"me": principal, "agreement": agreement, "mine": mine,
            "can_propose": discloser and status in service.MOVES and
            "proposed" in service.MOVES[status],
            "can_terminate": discloser and "terminated" in service.MOVES.get(status, ()),
            "sign_for": sign_for, "typed": typed or {}, "error": None, "done": None}


@get("/agreements/{agreement_id:int}", name="lab_agreement")
def agreement_page(principal: Principal, agreement_id: int,
                   done: str | None = None) -> Template:
    _require_lab_user(principal)
    context = _agreement_context(principal, agreement_id)
    context["done"] = agreement_done_message(done)
    return page("forms/agreement.html", **context)


def _version(form) -> int | None:
    raw = str(form.get("version", "")).strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 18 else None


async def _agreement_action(request: Request, principal: Principal, agreement_id: int,
                            name: str, action) -> Response:
    """Runs one write (`action(form)` returns a DONE code); on refusal, the agreement's
    page again with the reasons and the input. An agreement the principal may not see
    stays a plain 404 (the re-render asks the same visibility question)."""
    _require_lab_user(principal)
    form = await request.form()
    typed = {k: str(form.get(k, ""))[:MAX_TYPED] for k in ("lab", "reason")}
    typed["form"] = name  # which form to show again, with what was typed in it
    try:
        code = await anyio.to_thread.run_sync(action, form)
    except DomainError as exc:
        error = problem_of(exc)
        context = await anyio.to_thread.run_sync(_agreement_context, principal, agreement_id,
                                                 typed)
        context["error"] = error
        return page("forms/agreement.html", status=error["status"], **context)
    return Redirect(f"/lab/agreements/{agreement_id}?{urlencode({'done': code})}",
                    status_code=303)


@litestar.post("/agreements/{agreement_id:int}/propose", status_code=303)
async def propose_form(request: Request, principal: Principal, agreement_id: int) -> Response:
    def run(form) -> str:
        with session_scope() as session:
            service.transition_agreement(session, principal, agreement_id, "proposed",
                                         _version(form))
        return "agreement-proposed"
    return await _agreement_action(request, principal, agreement_id, "propose", run)


@litestar.post("/agreements/{agreement_id:int}/terminate", status_code=303)
async def terminate_form(request: Request, principal: Principal, agreement_id: int) -> Response:
    def run(form) -> str:
        reason = str(form.get("reason", "")).strip()
        if len(reason) > 2000:
            raise Invalid("keep the reason under 2000 characters", field="reason")
        with session_scope() as session:
            service.transition_agreement(session, principal, agreement_id, "terminated",
                                         _version(form), reason or None)
        return "agreement-terminated"
    return await _agreement_action(request, principal, agreement_id, "terminate", run)


@litestar.post("/agreements/{agreement_id:int}/sign", status_code=303)
async def sign_form(request: Request, principal: Principal, agreement_id: int) -> Response:
    def run(form) -> str:
        lab = str(form.get("lab", "")).strip()
        if not lab:
            raise Invalid("choose the party lab you sign for", field="lab")
        with session_scope() as session:
            agreement = service.sign_agreement(session, principal, agreement_id, lab[:63],
                                               _version(form))
            return ("agreement-activated" if agreement.status == "active"
                    else "agreement-signed")
    return await _agreement_action(request, principal, agreement_id, "sign", run)


def agreement_form_handlers() -> list:
    return [agreements_page, draft_from_template_form, agreement_page, propose_form,
            terminate_form, sign_form]
