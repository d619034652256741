"""Filing, revising and moving release plans through their lifecycle."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from app.access import plan_audience, visible_plans
from app.auth.principal import Principal
from app.errors import Invalid, InvalidTransition, NotFound, PolicyViolation
from app.events.service import record
from app.labs.tables import Lab
from app.markdown import stored_html
from app.models.service import find_model
from app.models.tables import AIModel
from app.norms.loader import known_policy_ids
from app.pagination import PageRequest, paginate
from app.plans import cache
from app.plans.schemas import PlanCreate, PlanRead, PlanUpdate, StageIn, StageRead
from app.plans.tables import PlanRevision, ReleasePlan, Stage
from app.plans.transitions import PLAN_MOVES, STAGE_DONE, STAGE_MOVES, check_move
from app.timeutil import digest, utcnow
from app.versioning import claim_version

STAGE_CONTENT = tuple(StageIn.model_fields)


def stages_of(session: Session, plan_id: int) -> list[Stage]:
    return list(session.exec(select(Stage).where(Stage.plan_id == plan_id)
                             .order_by(Stage.position)))


def plan_content(session: Session, plan: ReleasePlan,
                 stages: list[Stage] | None = None) -> dict:
    """The canonical content of a plan: what revisions store and digests cover."""
    model = session.get(AIModel, plan.model_id)
    lab = session.get(Lab, plan.lab_id)
    stages = stages_of(session, plan.id) if stages is None else stages
    return {
        "model": f"{lab.slug}/{model.slug}", "title": plan.title, "summary": plan.summary,
        "status": plan.status, "policies": list(plan.policies or []),
        "stages": [StageRead.model_validate(s).model_dump(mode="json") for s in stages],
    }


def stages_of_plans(session: Session, plan_ids) -> dict[int, list[Stage]]:
    """Each plan's stages in position order, in one query for all of them."""
    stages: dict[int, list[Stage]] = {i: [] for i in plan_ids}
    if stages:
        for stage in session.exec(select(Stage).where(Stage.plan_id.in_(stages))
                                  .order_by(Stage.plan_id, Stage.position)):
            stages[stage.plan_id].append(stage)
    return stages


def read_plans(session: Session, plans: list[ReleasePlan],
               stages: dict[int, list[Stage]] | None = None) -> list[PlanRead]:
    """A page of plans in three queries (models, labs, stages), not three per plan: the
    rows loaded here sit in the session's identity map, where session.get finds them (it
    holds them weakly, so `related` keeps them alive until the page is built). `stages`:
    stages_of_plans already read by the caller."""
    if not plans:
        return []
    related = [*session.exec(select(AIModel).where(AIModel.id.in_({p.model_id for p in plans}))),
               *session.exec(select(Lab).where(Lab.id.in_({p.lab_id for p in plans})))]
    if stages is None:
        stages = stages_of_plans(session, [p.id for p in plans])
    page = [read_plan(session, p, stages[p.id]) for p in plans]
    del related
    return page


def read_plan(session: Session, plan: ReleasePlan,
              stages: list[Stage] | None = None) -> PlanRead:
    content = plan_content(session, plan, stages)
    return PlanRead(id=plan.id, lab=content["model"].split("/")[0],
                    summary_html=stored_html(plan, "summary"), version=plan.version,
                    created_at=plan.created_at, updated_at=plan.updated_at,
                    filed_at=plan.filed_at, **content)


def _changed(session: Session, actor: Principal, plan: ReleasePlan, action: str,
             change: str, data: dict | None = None) -> None:
    """Every change: a revision with the full content, an event, a cache drop. `data`:
    more for the event (a backdated release says so)."""
    content = plan_content(session, plan)
    number = 1 + len(session.exec(select(PlanRevision.id)
                                  .where(PlanRevision.plan_id == plan.id)).all())
    session.add(PlanRevision(plan_id=plan.id, number=number, author_id=actor.user_id,
                             author=actor.name, change=change, content=content,
                             digest=digest(content)))
    record(session, actor, "plan", plan.id, action, content, lab_id=plan.lab_id,
           visibility=plan_audience(session, plan),
           data={"revision": number, "version": plan.version, **(data or {})})
    cache.drop_on_commit(session, plan.id)


def file_plan(session: Session, actor: Principal, data: PlanCreate) -> ReleasePlan:
    model = find_model(session, actor, data.model)
    actor.require_member(model.lab_id)
    plan = ReleasePlan(model_id=model.id, lab_id=model.lab_id, title=data.title,
                       summary=data.summary, created_by=actor.user_id,
                       policies=known_policy_ids(data.policies))
    if data.file:
        plan.status, plan.filed_at = "filed", utcnow()
    session.add(plan)
    session.flush()
    for position, stage in enumerate(data.stages, start=1):
        session.add(Stage(plan_id=plan.id, position=position, **stage.model_dump()))
    session.flush()
    _changed(session, actor, plan, "filed" if data.file else "drafted", "created")
    return plan


def get_plan(session: Session, principal: Principal, plan_id: int) -> ReleasePlan:
    plan = session.exec(select(ReleasePlan).where(ReleasePlan.id == plan_id,
                                                  visible_plans(principal))).first()
    if plan is None:
        raise NotFound(f"no plan {plan_id}", field="plan_id")
    return plan


def is_public(session: Session, plan_id: int) -> bool:
    """May an anonymous caller read this plan now? (app.access.plan_audience.)"""
    return plan_audience(session, session.get(ReleasePlan, plan_id)) == "public"


def list_plans(session: Session, principal: Principal, page: PageRequest, *,
               model: str | None = None, status: str | None = None, lab: str | None = None):
    query = select(ReleasePlan).where(visible_plans(principal))
    if model:
        query = query.where(ReleasePlan.model_id == find_model(session, principal, model).id)
    if status:
        query = query.where(ReleasePlan.status == status)
    if lab:
        query = query.join(Lab, Lab.id == ReleasePlan.lab_id).where(Lab.slug == lab)
    return paginate(session, query, ReleasePlan.id, page)


def _writable(session: Session, actor: Principal, plan_id: int, version: int | None):
    plan = get_plan(session, actor, plan_id)
    actor.require_member(plan.lab_id)
    return claim_version(session, plan, version)


def revise_plan(session: Session, actor: Principal, plan_id: int,
                data: PlanUpdate) -> ReleasePlan:
    plan = get_plan(session, actor, plan_id)
    if plan.status in ("completed", "withdrawn"):
        raise InvalidTransition(f"a {plan.status} plan cannot be revised", field="status")
    plan = _writable(session, actor, plan_id, data.version)
    changed = []
    for key in ("title", "summary"):
        value = getattr(data, key)
        if value is not None and value != getattr(plan, key):
            setattr(plan, key, value)
            changed.append(key)
    if data.policies is not None and data.policies != plan.policies:
        plan.policies = known_policy_ids(data.policies)
        changed.append("policies")
    if data.stages is not None:
        _replace_stages(session, plan, data.stages)
        changed.append("stages")
    session.add(plan)
    session.flush()
    _changed(session, actor, plan, "revised", "revised " + (", ".join(changed) or "nothing"))
    return plan


def _replace_stages(session: Session, plan: ReleasePlan, incoming: list[StageIn]) -> None:
    """Released and cancelled stages are history: a revision may not rewrite them."""
    existing = stages_of(session, plan.id)
    for index, stage in enumerate(existing):
        new = incoming[index] if index < len(incoming) else None
        if stage.status in STAGE_DONE:
            old = {k: getattr(stage, k) for k in STAGE_CONTENT}
            if new is None or new.model_dump() != old:
                raise Invalid(f"stage {stage.position} is {stage.status} and cannot change",
                              field=f"stages[{index}]")
        elif new is None:
            session.delete(stage)
        else:
            for key, value in new.model_dump().items():
                setattr(stage, key, value)
            session.add(stage)
    for position, stage in enumerate(incoming[len(existing):], start=len(existing) + 1):
        session.add(Stage(plan_id=plan.id, position=position, **stage.model_dump()))
    session.flush()


def transition_plan(session: Session, actor: Principal, plan_id: int, to: str,
                    version: int | None, reason: str | None = None) -> ReleasePlan:
    plan = get_plan(session, actor, plan_id)
    check_move(PLAN_MOVES, "plan", plan.status, to)
    if to == "completed":
        open_stages = [s.position for s in stages_of(session, plan.id) if s.status not in STAGE_DONE]
        if open_stages:
            raise InvalidTransition(f"stages {open_stages} are neither released nor cancelled",
                                    field="to", allowed=["withdrawn"])
    plan = _writable(session, actor, plan_id, version)
    plan.status = to
    if to == "filed":
        plan.filed_at = utcnow()
    session.add(plan)
    session.flush()
    _changed(session, actor, plan, to, f"plan {to}" + (f": {reason}" if reason else ""))
    return plan


def transition_stage(session: Session, actor: Principal, plan_id: int, position: int,
                     to: str, version: int | None, actual_date=None,
                     reason: str | None = None, *, gate) -> ReleasePlan:
    """`gate(session, plan, stage, release_date)` raises PolicyViolation when a release
    may not go out: the policy gate (app.norms.gate), passed in by app.flows because
    plans sit below the norms in the layers. Required, so no release skips it."""
    plan = get_plan(session, actor, plan_id)
    stage = session.exec(select(Stage).where(Stage.plan_id == plan.id,
                                             Stage.position == position)).first()
    if stage is None:
        raise NotFound(f"plan {plan_id} has no stage {position}", field="position")
    if to not in STAGE_MOVES:  # not a stage status at all: bad input before any state check
        check_move(STAGE_MOVES, "stage", stage.status, to)
    if plan.status not in ("filed", "active"):
        raise InvalidTransition(f"stages move only in a filed or active plan; this one is "
                                f"{plan.status}", field="status", allowed=[])
    check_move(STAGE_MOVES, "stage", stage.status, to)
    event: dict = {}
    judged: list[dict] | None = None
    if to == "released":
        released_on, event = _release_date(actor, actual_date)
        try:
            # The policy gate: deny rules that do not hold stop the release (409, nothing
            # changed).
            judged = gate(session, plan, stage, released_on) or []
        except PolicyViolation as exc:
            # A coordinator importing history is judged too, but a deny cannot undo what
            # already happened: the verdict goes on the record instead.
            if not event:
                raise
            event["gate"] = [f"{v['policy']}/{v['rule']}" for v in exc.extra["violations"]]
            judged = [{k: v[k] for k in ("policy", "rule", "action", "verdict")}
                      for v in exc.extra["violations"]]
    plan = _writable(session, actor, plan_id, version)
    stage.status = to
    if to == "released":
        stage.actual_date = released_on
        if plan.status == "filed":
            plan.status = "active"
    session.add_all([stage, plan])
    session.flush()
    _changed(session, actor, plan, f"stage_{to}",
             f"stage {position} {to}" + (f": {reason}" if reason else ""), event)
    if judged is not None:
        # The verdicts this release was judged with, as their own event (and so their own
        # transparency-log leaf): nobody can later claim it shipped with a pass it lacked.
        verdict = {"plan": plan.id, "stage": position, "released_on": released_on.isoformat(),
                   "verdicts": judged}
        record(session, actor, "plan", plan.id, "release_judged", verdict, lab_id=plan.lab_id,
               visibility=plan_audience(session, plan), data=verdict)
    return plan


def _release_date(actor: Principal, actual_date: date | None) -> tuple[date, dict]:
    """The day a stage goes out is today by the registry's clock (UTC): the gate reads
    it (spacing between stages, agreements in force before it), so a client may not
    choose it. A later day is refused for everyone; an earlier one is a coordinator
    importing history, and the event says so: (date, event data; {} when not backdated)."""
    today = utcnow().date()
    if actual_date is None or actual_date == today:
        return today, {}
    if actual_date > today:
        raise Invalid(f"actual_date {actual_date.isoformat()} is in the future; a release "
                      f"happens today ({today.isoformat()}, UTC) or earlier",
                      field="actual_date")
    if not actor.is_coordinator:
        # 422, not 403: the value is what is refused, and the lab form keeps the input.
        raise Invalid(f"actual_date {actual_date.isoformat()} is before today "
                      f"({today.isoformat()}, UTC): only a coordinator importing history "
                      "may backdate a release; leave it out to release today",
                      field="actual_date")
    return actual_date, {"backdated": True, "actual_date": actual_date.isoformat(),
                         "recorded_on": today.isoformat(), "gate": []}


def list_revisions(session: Session, principal: Principal, plan_id: int) -> list[PlanRevision]:
    return revisions_of_plan(session, get_plan(session, principal, plan_id))


def revisions_of_plan(session: Session, plan: ReleasePlan) -> list[PlanRevision]:
    """list_revisions of a plan already read through get_plan."""
    plan_id = plan.id
    return list(session.exec(select(PlanRevision).where(PlanRevision.plan_id == plan_id)
                             .order_by(PlanRevision.number)))


def get_revision(session: Session, principal: Principal, plan_id: int,
                 number: int) -> PlanRevision:
    get_plan(session, principal, plan_id)
    revision = session.exec(select(PlanRevision).where(PlanRevision.plan_id == plan_id,
                                                       PlanRevision.number == number)).first()
    if revision is None:
        raise NotFound(f"plan {plan_id} has no revision {number}", field="number")
    return revision


def diff(old, new, path: str = "") -> list[dict]:
    """Structured differences between two revision contents: path, from, to."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += diff(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            out += diff(old[i] if i < len(old) else None, new[i] if i < len(new) else None,
                        f"{path}[{i}]")
        return out
    return [] if old == new else [{"path": path, "from": old, "to": new}]


def diff_revisions(session: Session, principal: Principal, plan_id: int, a: int,
                   b: int) -> list[dict]:
    old = get_revision(session, principal, plan_id, a)
    new = get_revision(session, principal, plan_id, b)
    return diff(old.content, new.content)
