"""Lab forms: file and revise a release plan, move a plan or a stage, edit a model's card
prose, upload a checkpoint. The same services as the API; a refusal re-renders the form
with its reasons and what was typed."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from secrets import compare_digest
from urllib.parse import urlencode

import anyio
import litestar
import pydantic
from litestar import Request, Response
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect, Template
from litestar.utils.scope.state import ScopeState
from sqlmodel import select

from app import flows
from app.access import visible_plans
from app.auth.principal import Principal
from app.checkpoints import service as checkpoints
from app.checkpoints.schemas import CheckpointCreate
from app.checkpoints.tables import ACCESS_LEVELS as CHECKPOINT_ACCESS
from app.checkpoints.tables import Checkpoint
from app.checkpoints.upload_form import read_upload
from app.db import session_scope
from app.errors import DomainError, Forbidden, Invalid, TooLarge
from app.http import get
from app.labs.tables import Lab
from app.models import service as models
from app.models.tables import CARD_SECTIONS, AIModel
from app.norms.service import list_policies
from app.pagination import PageRequest
from app.plans import service
from app.plans.schemas import PlanCreate, PlanUpdate
from app.plans.tables import (
    ACCESS_LEVELS,
    ARTIFACTS,
    PLAN_STATUSES,
    STAGE_STATUSES,
    ReleasePlan,
    Stage,
)
from app.plans.transitions import PLAN_MOVES, STAGE_DONE, STAGE_MOVES
from app.settings import get_settings
from app.web.auth import SESSION_COOKIE, BrowserCSRFMiddleware, cross_site
from app.web.auth_sessions import csrf_config, csrf_secret
from app.web.pages import page
from app.web.problems import problem_of

STAGE_FIELDS = ("name", "parameter_count", "checkpoint_ref", "planned_date", "access_level",
                "rationale", "risk_assessment")
BLANK_ROWS = 2  # room for new stages without scripts; submit again for more
MAX_ROWS = 50

# ?done= carries a code, never text (like the console's DONE): only these messages can
# appear as the notice, so a crafted link cannot put words in the page's mouth. Unknown
# codes show nothing.
DONE = {"plan-saved": "Plan saved.", "plan-revised": "Plan revised.",
        "checkpoint-detached": "Checkpoint detached from its stage.",
        "card-saved": "Model card saved.",
        "card-unchanged": "Nothing was changed, so the card was not saved.",
        "checkpoint-uploaded": "Checkpoint uploaded; its evaluations are queued.",
        **{f"plan-moved-{status}": f"Plan moved to {status}." for status in PLAN_STATUSES}}
STAGE_DONE_CODE = re.compile(r"(stage-moved|checkpoint-attached)-([1-9][0-9]{0,3})(?:-([a-z]+))?")


def done_message(code: str | None) -> str | None:
    """The notice for a ?done= code; a stage position is the only number a code carries."""
    if not code:
        return None
    if code in DONE:
        return DONE[code]
    match = STAGE_DONE_CODE.fullmatch(code)
    if match is None:
        return None
    kind, position, status = match.groups()
    if kind == "stage-moved" and status in STAGE_STATUSES:
        return f"Stage {position} moved to {status}."
    if kind == "checkpoint-attached" and status is None:
        return f"Checkpoint attached to stage {position}."
    return None


def _require_lab_user(principal: Principal) -> None:
    if not (principal.roles or principal.is_coordinator):
        raise Forbidden("lab forms are for members of a lab")


def _blank_row() -> dict:
    return {**{k: "" for k in STAGE_FIELDS}, "access_level": "internal", "artifacts": [],
            "status": None}


def _rows_from_form(form) -> list[dict]:
    raw = str(form.get("rows", ""))
    count = min(int(raw), MAX_ROWS) if raw.isdigit() else 0
    rows = []
    for i in range(count):
        row = {k: str(form.get(f"stage-{i}-{k}", "")) for k in STAGE_FIELDS}
        row["artifacts"] = [str(a) for a in form.getall(f"stage-{i}-artifacts", [])]
        row["status"] = str(form.get(f"stage-{i}-status", "")) or None
        rows.append(row)
    return rows


def _stage_payload(rows: list[dict]) -> tuple[list[dict], list[int]]:
    """The rows someone filled in, as the API's stage objects, and which row each came from."""
    stages, origin = [], []
    for index, row in enumerate(rows):
        typed = [row[k].strip() for k in STAGE_FIELDS if k != "access_level"]
        if not any(typed) and not row["artifacts"]:
            continue
        stage = {k: (row[k].strip() or None) for k in
                 ("parameter_count", "checkpoint_ref", "planned_date")}
        stage.update(name=row["name"].strip(), access_level=row["access_level"],
                     artifacts=row["artifacts"], rationale=row["rationale"],
                     risk_assessment=row["risk_assessment"])
        stages.append(stage)
        origin.append(index)
    return stages, origin


def _field_name(loc: tuple, origin: list[int]) -> str:
    """stages.2.name -> "stage row 4: name" (the row the person typed in)."""
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] == "stages" and parts[1].isdigit():
        row = origin[int(parts[1])] + 1 if int(parts[1]) < len(origin) else int(parts[1]) + 1
        return f"stage row {row}" + (f": {'.'.join(parts[2:])}" if parts[2:] else "")
    return ".".join(parts) or "form"


def _invalid(exc: pydantic.ValidationError, origin: list[int]) -> dict:
    errors = [{"field": _field_name(e["loc"], origin), "reason": e["msg"]} for e in exc.errors()]
    return {"status": 422, "title": "Invalid input", "errors": errors, "violations": [],
            "detail": "the plan was not saved; fix the fields below", "allowed": None}


def _domain(exc: DomainError, origin: list[int]) -> dict:
    error = problem_of(exc)
    if exc.field and exc.field.startswith("stages["):
        index = exc.field[len("stages["):].split("]")[0]
        if index.isdigit():
            error["errors"] = [{"field": _field_name(("stages", index), origin),
                                "reason": exc.detail}]
    return error


def _my_models(session, principal: Principal, members_only: bool = False) -> list[dict]:
    query = select(AIModel.id, Lab.slug, AIModel.slug, AIModel.name).join(
        Lab, Lab.id == AIModel.lab_id).order_by(Lab.slug, AIModel.slug)
    if members_only or not principal.is_coordinator:
        query = query.where(AIModel.lab_id.in_(principal.lab_ids or [-1]))
    return [{"id": model_id, "ref": f"{lab}/{slug}", "name": name}
            for model_id, lab, slug, name in session.exec(query)]


def _models_for(principal: Principal) -> list[dict]:
    with session_scope(write=False) as session:
        return _my_models(session, principal)


def _form_context(principal: Principal, **extra) -> dict:
    return {"me": principal, "access_levels": ACCESS_LEVELS, "artifact_choices": ARTIFACTS,
            "policy_choices": list_policies(),
            "error": None, "done": None, "plan": None, "moves": [], "stage_moves": {},
            "typed": {}, **extra}


@get("/", name="lab_home")
def lab_home(principal: Principal, done: str | None = None) -> Template:
    _require_lab_user(principal)
    with session_scope(write=False) as session:
        labs = {lab.id: lab.slug for lab in session.exec(
            select(Lab).where(Lab.id.in_(principal.lab_ids or [-1])))}
        plans = []
        for slug in sorted(labs.values()):
            rows, _ = service.list_plans(session, principal, PageRequest(limit=200), lab=slug)
            plans += [service.read_plan(session, p) for p in rows]
        my_models = _my_models(session, principal, members_only=True)
    return page("forms/lab.html", me=principal, plans=plans, models=my_models,
                done=done_message(done))


@get("/plans/new", name="plan_new")
def new_plan_form(principal: Principal, model: str | None = None) -> Template:
    _require_lab_user(principal)
    models = _models_for(principal)
    rows = [_blank_row() for _ in range(2 + BLANK_ROWS)]
    values = {"model": model or "", "title": "", "summary": "", "file": "", "policies": []}
    return page("forms/plan.html", **_form_context(principal, models=models, rows=rows,
                                                   values=values))


@litestar.post("/plans/new", status_code=303)
async def file_plan_form(request: Request, principal: Principal) -> Response:
    _require_lab_user(principal)
    form = await request.form()
    rows = _rows_from_form(form)
    values = {k: str(form.get(k, "")) for k in ("model", "title", "summary", "file")}
    values["policies"] = _policies(form)
    stages, origin = _stage_payload(rows)

    def run():
        with session_scope() as session:
            data = PlanCreate(model=values["model"], title=values["title"],
                              summary=values["summary"], stages=stages,
                              policies=values["policies"], file=bool(values["file"]))
            return service.file_plan(session, principal, data).id

    try:
        plan_id = await anyio.to_thread.run_sync(run)
    except (DomainError, pydantic.ValidationError) as exc:
        error = _invalid(exc, origin) if isinstance(exc, pydantic.ValidationError) \
            else _domain(exc, origin)
        models = await anyio.to_thread.run_sync(_models_for, principal)
        return page("forms/plan.html", status=error["status"], **_form_context(
            principal, models=models, rows=rows + [_blank_row()] * (rows == []),
            values=values, error=error))
    return Redirect(f"/lab/plans/{plan_id}?{urlencode({'done': 'plan-saved'})}",
                    status_code=303)


def _plan_context(principal: Principal, plan_id: int, rows: list[dict] | None = None,
                  values: dict | None = None) -> dict:
    with session_scope(write=False) as session:
        row = service.get_plan(session, principal, plan_id)
        # Filed plans are public, but only their lab (and coordinators) edit them.
        principal.require_member(row.lab_id)
        plan = service.read_plan(session, row)
        # The public page exists when an anonymous reader may see the plan: the plans'
        # own visibility rule (a withdrawn draft or a private model's plan has none).
        public = service.is_public(session, row.id)
        stage_at = {s.id: s.position for s in service.stages_of(session, row.id)}
        hosted = [{"id": c.id, "name": c.name, "access_level": c.access_level,
                   "stage": stage_at.get(c.stage_id)}
                  for c in session.exec(select(Checkpoint).where(
                      Checkpoint.model_id == row.model_id).order_by(Checkpoint.id))]
    current = [{**{k: ("" if getattr(s, k) is None else str(getattr(s, k)))
                   for k in STAGE_FIELDS}, "artifacts": list(s.artifacts), "status": s.status}
               for s in plan.stages]
    return _form_context(
        principal, plan=plan, public=public, models=[], hosted=hosted, model_id=row.model_id,
        rows=rows if rows is not None else current + [_blank_row() for _ in range(BLANK_ROWS)],
        values=values or {"model": plan.model, "title": plan.title, "summary": plan.summary,
                          "policies": list(plan.policies)},
        moves=list(PLAN_MOVES.get(plan.status, ())),
        stage_moves={s.position: list(STAGE_MOVES.get(s.status, ())) for s in plan.stages},
        locked=STAGE_DONE)


@get("/plans/{plan_id:int}", name="plan_edit")
def edit_plan_form(principal: Principal, plan_id: int, done: str | None = None) -> Template:
    _require_lab_user(principal)
    context = _plan_context(principal, plan_id)
    context["done"] = done_message(done)
    return page("forms/plan.html", **context)


async def _plan_action(request: Request, principal: Principal, plan_id: int, action) -> Response:
    """Runs one write (`action` returns a DONE code); on refusal, the plan page again with
    the reasons and the input."""
    _require_lab_user(principal)
    form = await request.form()
    rows = _rows_from_form(form) if "rows" in form else None
    values = {k: str(form.get(k, "")) for k in ("title", "summary")} if rows is not None \
        else None
    if values is not None:
        values["policies"] = _policies(form)
    stages, origin = _stage_payload(rows or [])
    try:
        message = await anyio.to_thread.run_sync(action, form, stages)
    except (DomainError, pydantic.ValidationError) as exc:
        if isinstance(exc, DomainError) and exc.status in (401, 403, 404):
            raise
        error = _invalid(exc, origin) if isinstance(exc, pydantic.ValidationError) \
            else _domain(exc, origin)
        context = await anyio.to_thread.run_sync(_plan_context, principal, plan_id, rows,
                                                 values)
        context.update(error=error, typed={k: str(form.get(k, "")) for k in form})
        return page("forms/plan.html", status=error["status"], **context)
    return Redirect(f"/lab/plans/{plan_id}?{urlencode({'done': message})}", status_code=303)


def _policies(form) -> list[str]:
    return [str(p) for p in form.getall("policies", [])]


def _version(form) -> int | None:
    raw = str(form.get("version", "")).strip()
    return int(raw) if raw.isdigit() else None


@litestar.post("/plans/{plan_id:int}", status_code=303)
async def revise_plan_form(request: Request, principal: Principal, plan_id: int) -> Response:
    def run(form, stages):
        with session_scope() as session:
            # Unticking every policy is a choice too; a form without the fieldset keeps them.
            sent = {"policies": _policies(form)} if form.get("policies_sent") else {}
            data = PlanUpdate(version=_version(form), title=str(form.get("title", "")),
                              summary=str(form.get("summary", "")), stages=stages, **sent)
            service.revise_plan(session, principal, plan_id, data)
        return "plan-revised"
    return await _plan_action(request, principal, plan_id, run)


@litestar.post("/plans/{plan_id:int}/move", status_code=303)
async def move_plan_form(request: Request, principal: Principal, plan_id: int) -> Response:
    def run(form, _stages):
        to = str(form.get("to", ""))[:20]
        with session_scope() as session:
            service.transition_plan(session, principal, plan_id, to, _version(form),
                                    str(form.get("reason", "")).strip()[:2000] or None)
        return f"plan-moved-{to}"
    return await _plan_action(request, principal, plan_id, run)


@litestar.post("/plans/{plan_id:int}/stages/{position:int}/move", status_code=303)
async def move_stage_form(request: Request, principal: Principal, plan_id: int,
                          position: int) -> Response:
    def run(form, _stages):
        to = str(form.get("to", ""))[:20]
        raw_date = str(form.get("actual_date", "")).strip()
        try:
            actual = date.fromisoformat(raw_date) if raw_date else None
        except ValueError:
            raise Invalid("give a date like 2019-02-14", field="actual_date") from None
        with session_scope() as session:
            flows.transition_stage(session, principal, plan_id, position, to,
                                     _version(form), actual,
                                     str(form.get("reason", "")).strip()[:2000] or None)
        return f"stage-moved-{position}-{to}"
    return await _plan_action(request, principal, plan_id, run)


@litestar.post("/plans/{plan_id:int}/checkpoints", status_code=303)
async def attach_checkpoint_form(request: Request, principal: Principal,
                                 plan_id: int) -> Response:
    def run(form, _stages):
        raw_id, raw_stage = str(form.get("checkpoint", "")), str(form.get("stage", ""))
        if not raw_id.isdigit():
            raise Invalid("choose a checkpoint", field="checkpoint")
        position = int(raw_stage) if raw_stage.isdigit() else None
        with session_scope() as session:
            checkpoints.attach_to_stage(session, principal, int(raw_id),
                                        plan_id if position else None, position)
        return (f"checkpoint-attached-{position}" if position
                else "checkpoint-detached")
    return await _plan_action(request, principal, plan_id, run)


# --- a model: its card prose and its checkpoints -------------------------------------

SECTION_TITLES = {key: key.replace("_", " ").capitalize() for key in CARD_SECTIONS}


def _lab_model(session, principal: Principal, model_id: int) -> AIModel:
    """A model the principal may see (else 404) and edit (else 403)."""
    model = models.get_model(session, principal, model_id)
    principal.require_member(model.lab_id)
    return model


def _model_context(principal: Principal, model_id: int, typed: dict | None = None) -> dict:
    with session_scope(write=False) as session:
        row = _lab_model(session, principal, model_id)
        model = models.read_model(session, row)
        stage_at = {s.id: (s.plan_id, s.position) for s in session.exec(
            select(Stage).join(ReleasePlan, ReleasePlan.id == Stage.plan_id)
            .where(ReleasePlan.model_id == row.id, visible_plans(principal)))}
        hosted = [{"id": c.id, "name": c.name, "access_level": c.access_level,
                   "stage": stage_at.get(c.stage_id), "created_at": c.created_at}
                  for c in session.exec(select(Checkpoint).where(
                      Checkpoint.model_id == row.id).order_by(Checkpoint.id))]
    saved = {key: getattr(model, key) for key in CARD_SECTIONS}
    return {"me": principal, "model": model, "hosted": hosted, "titles": SECTION_TITLES,
            "values": typed if typed is not None else saved, "saved": saved,
            "error": None, "done": None}


@get("/models/{model_id:int}", name="model_edit")
def edit_model_form(principal: Principal, model_id: int, done: str | None = None) -> Template:
    _require_lab_user(principal)
    context = _model_context(principal, model_id)
    context["done"] = done_message(done)
    return page("forms/model.html", **context)


def _typed_card(form) -> dict[str, str]:
    # Browsers send a textarea's line breaks as CRLF; the card keeps plain newlines.
    return {key: str(form.get(key, "")).replace("\r\n", "\n") for key in CARD_SECTIONS}


def _field_errors(exc: pydantic.ValidationError, detail: str) -> dict:
    errors = [{"field": ".".join(str(p) for p in e["loc"]) or "form", "reason": e["msg"]}
              for e in exc.errors()]
    return {"status": 422, "title": "Invalid input", "errors": errors, "violations": [],
            "detail": detail, "allowed": None}


@litestar.post("/models/{model_id:int}", status_code=303)
async def save_card_form(request: Request, principal: Principal, model_id: int) -> Response:
    """The card's prose sections, under the version the form was opened at: a stale one
    is refused (409) with the typed text kept and the saved text beside it."""
    _require_lab_user(principal)
    form = await request.form()
    typed = _typed_card(form)
    version = _version(form)

    def run() -> str:
        with session_scope() as session:
            model = _lab_model(session, principal, model_id)
            if version == model.version and all(getattr(model, k) == v
                                                for k, v in typed.items()):
                return "card-unchanged"
            models.update_model(session, principal, model_id, version, card=typed)
        return "card-saved"

    try:
        code = await anyio.to_thread.run_sync(run)
    except (DomainError, pydantic.ValidationError) as exc:
        if isinstance(exc, DomainError) and exc.status in (401, 403, 404):
            raise
        error = _field_errors(exc, "the card was not saved; fix the fields below") \
            if isinstance(exc, pydantic.ValidationError) else problem_of(exc)
        context = await anyio.to_thread.run_sync(_model_context, principal, model_id, typed)
        context["error"] = error
        return page("forms/model.html", status=error["status"], **context)
    return Redirect(f"/lab/models/{model_id}?{urlencode({'done': code})}", status_code=303)


def _stage_choices(session, principal: Principal, model_id: int) -> list[dict]:
    """The stages of the model's plans the principal may see, as "PLAN:POSITION" values."""
    rows = session.exec(select(ReleasePlan.id, ReleasePlan.title, ReleasePlan.status,
                               Stage.position, Stage.name)
                        .join(Stage, Stage.plan_id == ReleasePlan.id)
                        .where(ReleasePlan.model_id == model_id, visible_plans(principal))
                        .order_by(ReleasePlan.id, Stage.position))
    return [{"value": f"{plan_id}:{position}",
             "label": f"plan #{plan_id} {title} ({status}), stage {position}: {name}"}
            for plan_id, title, status, position, name in rows]


def _upload_context(principal: Principal, model_id: int, values: dict | None = None,
                    error: dict | None = None) -> dict:
    with session_scope(write=False) as session:
        model = models.read_model(session, _lab_model(session, principal, model_id))
        stages = _stage_choices(session, principal, model_id)
    per_file, total = checkpoints.upload_limits()
    return {"me": principal, "model": model, "stages": stages,
            "access_levels": CHECKPOINT_ACCESS, "limits": {"file": per_file, "total": total},
            "values": values or {"name": "", "access_level": "internal", "stage": ""},
            "error": error, "done": None}


@get("/models/{model_id:int}/checkpoints/new", name="checkpoint_new")
def upload_checkpoint_form(principal: Principal, model_id: int,
                           stage: str | None = None) -> Template:
    _require_lab_user(principal)
    values = {"name": "", "access_level": "internal", "stage": (stage or "")[:40]}
    return page("forms/upload.html", **_upload_context(principal, model_id, values))


def _csrf(request: Request) -> tuple[BrowserCSRFMiddleware, str]:
    """The CSRF middleware's checker and this session's key (the token is bound to it)."""
    checker = BrowserCSRFMiddleware(app=None, config=replace(
        csrf_config(get_settings()), secret=csrf_secret()))
    return checker, checker.bound_secret(request.scope, request.cookies.get(SESSION_COOKIE))


def _check_csrf(request: Request, submitted: object) -> None:
    """BrowserCSRFMiddleware's check, made here for the upload form alone (the middleware
    skips it: opt exclude_from_csrf), because the middleware reads a multipart body whole
    (request.form()) before the handler runs, which is what the upload stream exists to
    avoid. Same rules, same code: cross-site writes are refused (by the handler, first);
    without a session cookie there is nothing to protect (the sign-in guard refuses such
    a write, or a bearer token acts); otherwise the form's token must match the CSRF
    cookie under the session's key. Called with the text fields, before any file part
    is kept."""
    if SESSION_COOKIE not in request.cookies:
        return
    checker, secret = _csrf(request)
    cookie = request.cookies.get(checker.config.cookie_name)
    if isinstance(submitted, str) and cookie:
        mine = checker.decode_token(submitted, secret)
        theirs = checker.decode_token(cookie, secret)
        if mine is not None and theirs is not None and compare_digest(mine, theirs):
            ScopeState.from_scope(request.scope).csrf_token = submitted  # for a re-render
            return
    raise PermissionDeniedException("CSRF token verification failed")


def _keep_csrf_token(request: Request) -> None:
    """A form re-rendered by a refusal that came before the token was read (a body over
    the limit) still carries one: the browser's own valid CSRF cookie, as the middleware
    gives a GET."""
    state = ScopeState.from_scope(request.scope)
    if isinstance(state.csrf_token, str) or SESSION_COOKIE not in request.cookies:
        return
    checker, secret = _csrf(request)
    cookie = request.cookies.get(checker.config.cookie_name)
    if cookie and checker.decode_token(cookie, secret) is not None:
        state.csrf_token = cookie


def _upload_fields(model_id: int, fields: dict) -> CheckpointCreate:
    raw = fields.get("stage", "").strip()
    plan = position = None
    if raw:
        plan_id, _, pos = raw.partition(":")
        if not (plan_id.isascii() and plan_id.isdigit() and pos.isascii() and pos.isdigit()):
            raise Invalid("choose a stage from the list", field="stage")
        plan, position = int(plan_id), int(pos)
    return CheckpointCreate(model=str(model_id), name=fields.get("name", "").strip(),
                            access_level=fields.get("access_level", "internal"),
                            plan=plan, stage=position)


def _store_upload(principal: Principal, data: CheckpointCreate, files: list) -> int:
    with session_scope() as session:
        return flows.upload_checkpoint(session, principal, data, files).id


# The multipart framing around the files (as the API allows it).
FORM_OVERHEAD = 1024 * 1024


@litestar.post("/models/{model_id:int}/checkpoints/new", status_code=303,
               request_max_body_size=None, opt={"exclude_from_csrf": True})
async def upload_checkpoint_post(request: Request, principal: Principal,
                                 model_id: int) -> Response:
    """A browser's multipart upload, read as a stream like the API's: the CSRF token and
    the fields (name, access level, stage) are checked and the caller authorised before
    a byte of any file is kept, and every file counts against the limits as it arrives."""
    _require_lab_user(principal)
    if cross_site(request.scope):
        raise PermissionDeniedException("cross-site form submissions are refused")
    typed: dict = {}

    async def authorise(fields: dict) -> None:
        typed.update({k: fields.get(k, "")[:200] for k in ("name", "access_level", "stage")})
        _check_csrf(request, fields.get("_csrf_token"))
        data = _upload_fields(model_id, fields)

        def check() -> None:
            with session_scope(write=False) as session:
                checkpoints.check_upload_allowed(session, principal, data)
        await anyio.to_thread.run_sync(check)
        authorised.append(data)

    authorised: list[CheckpointCreate] = []
    files: list = []
    per_file, total = checkpoints.upload_limits()
    try:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > total + FORM_OVERHEAD:
            raise TooLarge(f"the upload is larger than the limit of {total} bytes",
                           field="files", limit=total)
        _, files = await read_upload(request.stream(), request.headers.get("content-type", ""),
                                     authorise=authorise, per_file=per_file, total=total,
                                     overhead=FORM_OVERHEAD)
        # A file input left empty is sent as a part without a name or content.
        kept = [(name, spool) for name, spool in files if name]
        await anyio.to_thread.run_sync(_store_upload, principal, authorised[0], kept)
    except (DomainError, pydantic.ValidationError) as exc:
        if isinstance(exc, DomainError) and exc.status in (401, 403, 404):
            raise
        error = _field_errors(exc, "the checkpoint was not uploaded; fix the fields below") \
            if isinstance(exc, pydantic.ValidationError) else problem_of(exc)
        values = {"name": typed.get("name", ""), "stage": typed.get("stage", ""),
                  "access_level": typed.get("access_level") or "internal"}
        _keep_csrf_token(request)
        context = await anyio.to_thread.run_sync(_upload_context, principal, model_id, values,
                                                 error)
        return page("forms/upload.html", status=error["status"], **context)
    finally:
        for _, spool in files:
            spool.close()
    return Redirect(f"/lab/models/{model_id}?{urlencode({'done': 'checkpoint-uploaded'})}",
                    status_code=303)


def form_handlers() -> list:
    return [lab_home, new_plan_form, file_plan_form, edit_plan_form, revise_plan_form,
            move_plan_form, move_stage_form, attach_checkpoint_form, edit_model_form,
            save_card_form, upload_checkpoint_form, upload_checkpoint_post]
