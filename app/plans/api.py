"""/api/v1/plans: plans, revisions, diffs and transitions."""

from __future__ import annotations

from typing import Literal

import anyio
import litestar
from litestar import Controller, Request, Response

from app import flows
from app.auth.principal import Principal
from app.db import session_scope
from app.http import PUBLIC, PUBLIC_ETAG, expected_version, get, patch, post, with_etag
from app.ids import Id
from app.labs.service import get_lab
from app.pagination import Page, PageRequest
from app.plans import service
from app.plans.cache import Entry, plan_cache
from app.plans.schemas import (
    PlanCreate,
    PlanRead,
    PlanTransitionIn,
    PlanUpdate,
    RevisionNumber,
    RevisionRead,
    RevisionSummary,
    StagePosition,
    StageTransitionIn,
)
from app.plans.tables import PLAN_STATUSES
from app.transparency.service import revision_leaves, set_log_indexes


def _logged(session, principal: Principal, reads: list[PlanRead]) -> list[PlanRead]:
    """Each plan's log_index: the leaf of its latest event the reader may open."""
    return set_log_indexes(session, principal, "plan", reads)


def _read(session, principal: Principal, plan) -> PlanRead:
    return _logged(session, principal, [service.read_plan(session, plan)])[0]


def _render(plan_id: int, principal: Principal) -> Entry:
    cache = plan_cache()
    token = cache.token()
    with session_scope(write=False) as session:
        plan = service.get_plan(session, principal, plan_id)
        body = _read(session, principal, plan).model_dump_json().encode()
        # "public" means an anonymous caller may read it: asked of the same SQL filter.
        entry = Entry(body, plan.lab_id, service.is_public(session, plan.id), plan.version)
    cache.put(plan_id, entry, token)
    return entry


class PlanController(Controller):
    path = "/api/v1/plans"
    tags = ["plans"]

    @get("/", opt=PUBLIC)
    def list_plans(self, principal: Principal, page: PageRequest, model: str | None = None,
                   status: Literal[PLAN_STATUSES] | None = None,
                   lab: str | None = None) -> Page[PlanRead]:
        with session_scope(write=False) as session:
            if lab:  # an unknown lab is a 422 naming `lab`, as on every list
                get_lab(session, lab)
            rows, cursor = service.list_plans(session, principal, page, model=model,
                                              status=status, lab=lab)
            return Page(items=_logged(session, principal, service.read_plans(session, rows)),
                        next_cursor=cursor)

    @post("/")
    def file_plan(self, data: PlanCreate, principal: Principal) -> Response[PlanRead]:
        with session_scope() as session:
            plan = service.file_plan(session, principal, data)
            return with_etag(_read(session, principal, plan), 201)

    # The hot read path: async, served from the plan cache without a thread hop when
    # the database has not changed and the caller may see the plan.
    @litestar.get("/{plan_id:int}", opt=PUBLIC_ETAG)
    async def get_plan(self, plan_id: Id, principal: Principal) -> Response[PlanRead]:
        entry = plan_cache().get(plan_id)
        if entry is None or not (entry.public or principal.sees_lab(entry.lab_id)):
            entry = await anyio.to_thread.run_sync(_render, plan_id, principal)
        return Response(entry.body, media_type="application/json",
                        headers={"ETag": f'"{entry.version}"'})

    @patch("/{plan_id:int}")
    def revise_plan(self, plan_id: Id, data: PlanUpdate, request: Request,
                    principal: Principal) -> Response[PlanRead]:
        data.version = expected_version(request, data.version)
        with session_scope() as session:
            plan = service.revise_plan(session, principal, plan_id, data)
            return with_etag(_read(session, principal, plan))

    @post("/{plan_id:int}/transitions", status_code=200)
    def transition_plan(self, plan_id: Id, data: PlanTransitionIn, request: Request,
                        principal: Principal) -> Response[PlanRead]:
        with session_scope() as session:
            plan = service.transition_plan(session, principal, plan_id, data.to,
                                           expected_version(request, data.version),
                                           data.reason)
            return with_etag(_read(session, principal, plan))

    @post("/{plan_id:int}/stages/{position:int}/transitions", status_code=200)
    def transition_stage(self, plan_id: Id, position: StagePosition, data: StageTransitionIn,
                         request: Request, principal: Principal) -> Response[PlanRead]:
        with session_scope() as session:
            plan = flows.transition_stage(session, principal, plan_id, position, data.to,
                                            expected_version(request, data.version),
                                            data.actual_date, data.reason)
            return with_etag(_read(session, principal, plan))

    @get("/{plan_id:int}/revisions", opt=PUBLIC)
    def list_revisions(self, plan_id: Id, principal: Principal) -> list[RevisionSummary]:
        with session_scope(write=False) as session:
            leaves = revision_leaves(session, principal, plan_id)
            return [RevisionSummary.model_validate(r).model_copy(
                        update={"log_index": leaves.get(r.number)})
                    for r in service.list_revisions(session, principal, plan_id)]

    @get("/{plan_id:int}/revisions/{number:int}", opt=PUBLIC)
    def get_revision(self, plan_id: Id, number: RevisionNumber,
                     principal: Principal) -> RevisionRead:
        with session_scope(write=False) as session:
            read = RevisionRead.model_validate(
                service.get_revision(session, principal, plan_id, number))
            read.log_index = revision_leaves(session, principal, plan_id).get(number)
            return read

    @get("/{plan_id:int}/diff", opt=PUBLIC)
    def diff_revisions(self, plan_id: Id, principal: Principal, a: RevisionNumber,
                       b: RevisionNumber) -> dict:
        """Differences from revision `a` to revision `b`."""
        with session_scope(write=False) as session:
            changes = service.diff_revisions(session, principal, plan_id, a, b)
            return {"from": a, "to": b, "changes": changes}
