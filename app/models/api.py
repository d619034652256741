"""/api/v1/models"""

from __future__ import annotations

from litestar import Controller, Request, Response

from app.auth.principal import Principal
from app.db import session_scope
from app.http import PUBLIC, PUBLIC_ETAG, expected_version, get, patch, post, with_etag
from app.ids import Id
from app.models import service
from app.models.schemas import ModelCreate, ModelRead, ModelSummary, ModelUpdate
from app.pagination import Page, PageRequest


class ModelController(Controller):
    path = "/api/v1/models"
    tags = ["models"]

    @get("/", opt=PUBLIC)
    def list_models(self, principal: Principal, page: PageRequest,
                    lab: str | None = None) -> Page[ModelSummary]:
        """Summaries (no card prose); the full model is `GET /api/v1/models/{id}`."""
        with session_scope(write=False) as session:
            rows, cursor = service.list_models(session, principal, page, lab=lab)
            return Page(items=[ModelSummary.model_validate(m)
                               for m in service.read_models(session, rows)],
                        next_cursor=cursor)

    @post("/")
    def create_model(self, data: ModelCreate, principal: Principal) -> Response[ModelRead]:
        with session_scope() as session:
            return with_etag(service.read_model(
                session, service.create_model(session, principal, data)), 201)

    @get("/{model_id:int}", opt=PUBLIC_ETAG)
    def get_model(self, model_id: Id, principal: Principal) -> Response[ModelRead]:
        """The ETag is the model's version: send it back in If-Match (PATCH) or
        If-None-Match (GET, answered 304 while unchanged)."""
        with session_scope(write=False) as session:
            return with_etag(service.read_model(
                session, service.get_model(session, principal, model_id)))

    @patch("/{model_id:int}")
    def update_model(self, model_id: Id, data: ModelUpdate, request: Request,
                     principal: Principal) -> Response[ModelRead]:
        with session_scope() as session:
            model = service.update_model(session, principal, model_id,
                                         expected_version(request, data.version),
                                         name=data.name, public=data.public,
                                         card=data.card and data.card.model_dump(
                                             exclude_unset=True))
            return with_etag(service.read_model(session, model))
