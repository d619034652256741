"""/api/v1/evals (runs, results) and the model-card endpoints under /api/v1/models."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, Request, Response

from app.auth.principal import Principal
from app.db import session_scope
from app.evals import hf_export, reported, service
from app.evals.schemas import ReportedImport, ReportedUpdate, ResultRead, RunRead, RunRequest
from app.evals.tables import RUN_STATUSES
from app.http import PUBLIC, delete, get, patch, post
from app.ids import Id, OptionalId
from app.pagination import Page, PageRequest
from app.settings import get_settings

MARKDOWN = "text/markdown"


def public_base(request: Request) -> str:
    """Where cards point back to: STAGEGATE_PUBLIC_URL, else the address the client used."""
    return get_settings().public_url or str(request.base_url).rstrip("/")


def _readme(text: str) -> Response[str]:
    return Response(text, media_type=MARKDOWN,
                    headers={"Content-Disposition": 'attachment; filename="README.md"'})


class EvalController(Controller):
    path = "/api/v1/evals"
    tags = ["evaluations"]

    @get("/suites", opt=PUBLIC)
    def list_suites(self) -> list[dict]:
        return [{"id": s.id, "version": s.version, "description": s.description,
                 "config": s.config} for s in service.suites().values()]

    @get("/runs", opt=PUBLIC)
    def list_runs(self, principal: Principal, page: PageRequest, model: str | None = None,
                  checkpoint_id: OptionalId = None,
                  status: Literal[RUN_STATUSES] | None = None) -> Page[RunRead]:
        with session_scope(write=False) as session:
            rows, cursor = service.list_runs(session, principal, page, model=model,
                                             checkpoint_id=checkpoint_id, status=status)
            return Page(items=[service.read_run(r) for r in rows], next_cursor=cursor)

    @post("/runs")
    def request_run(self, data: RunRequest, principal: Principal) -> RunRead:
        with session_scope() as session:
            return service.read_run(service.request_run(session, principal,
                                                        data.checkpoint_id, data.suite))

    @get("/runs/{run_id:int}", opt=PUBLIC)
    def get_run(self, run_id: Id, principal: Principal) -> RunRead:
        with session_scope(write=False) as session:
            return service.read_run(service.get_run(session, principal, run_id))

    @post("/runs/{run_id:int}/cancel", status_code=200)
    def cancel_run(self, run_id: Id, principal: Principal) -> RunRead:
        with session_scope() as session:
            return service.read_run(service.cancel_run(session, principal, run_id))

    @get("/results", opt=PUBLIC)
    def list_results(self, principal: Principal, page: PageRequest, model: str | None = None,
                     checkpoint_id: OptionalId = None, suite: str | None = None,
                     source: Literal["measured", "reported"] | None = None
                     ) -> Page[ResultRead]:
        with session_scope(write=False) as session:
            rows, cursor = service.list_results(session, principal, page, model=model,
                                                checkpoint_id=checkpoint_id, suite=suite,
                                                source=source)
            return Page(items=[service.read_result(r) for r in rows], next_cursor=cursor)

    @get("/results/{result_id:int}", opt=PUBLIC)
    def get_result(self, result_id: Id, principal: Principal) -> ResultRead:
        with session_scope(write=False) as session:
            return service.read_result(service.get_result(session, principal, result_id))

    @patch("/results/{result_id:int}")
    def update_reported(self, result_id: Id, data: ReportedUpdate,
                        principal: Principal) -> ResultRead:
        """Repair a reported result's source or Hub names (lab members)."""
        with session_scope() as session:
            return service.read_result(reported.update_reported(session, principal,
                                                                result_id, data))

    @delete("/results/{result_id:int}")
    def delete_reported(self, result_id: Id, principal: Principal) -> dict:
        """Remove a reported result (lab members); measured results cannot be deleted."""
        with session_scope() as session:
            return reported.delete_reported(session, principal, result_id)


class ModelCardController(Controller):
    """Live model cards: measured and reported results per checkpoint, and HF export."""
    path = "/api/v1/models/{model_id:int}"
    tags = ["evaluations"]

    @post("/reported-results", status_code=201)
    def import_reported(self, model_id: Id, data: ReportedImport,
                        principal: Principal) -> list[ResultRead]:
        with session_scope() as session:
            rows = reported.import_reported(session, principal, model_id, data)
            return [service.read_result(r) for r in rows]

    @get("/card", opt=PUBLIC)
    def get_card(self, model_id: Id, principal: Principal) -> dict:
        with session_scope(write=False) as session:
            return hf_export.live_card(session, principal, model_id)

    @get("/card.md", opt=PUBLIC, media_type=MARKDOWN)
    def export_card(self, model_id: Id, principal: Principal,
                    request: Request) -> Response[str]:
        with session_scope(write=False) as session:
            return _readme(hf_export.readme(session, principal, model_id,
                                            public_base(request)))


class CheckpointCardController(Controller):
    """One checkpoint's README.md: on the Hub, one repository is one checkpoint."""
    path = "/api/v1/checkpoints/{checkpoint_id:int}"
    tags = ["evaluations"]

    @get("/card.md", opt=PUBLIC, media_type=MARKDOWN)
    def export_checkpoint_card(self, checkpoint_id: Id, principal: Principal,
                               request: Request) -> Response[str]:
        with session_scope(write=False) as session:
            return _readme(hf_export.checkpoint_readme(session, principal, checkpoint_id,
                                                       public_base(request)))
