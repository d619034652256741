"""/api/v1/agreements: disclosure agreements, their lifecycle and signatures."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, Request, Response

from app.agreements import service
from app.agreements.schemas import (
    AgreementCreate,
    AgreementRead,
    AgreementUpdate,
    SignIn,
    TemplateIn,
    TransitionIn,
)
from app.agreements.tables import KINDS, STATUSES
from app.auth.principal import Principal
from app.db import session_scope
from app.http import PUBLIC, PUBLIC_ETAG, expected_version, get, patch, post, with_etag
from app.ids import Id
from app.pagination import Page, PageRequest


class AgreementController(Controller):
    path = "/api/v1/agreements"
    tags = ["agreements"]  # noqa: RUF012

    @get("/", opt=PUBLIC)
    def list_agreements(self, principal: Principal, page: PageRequest,
                        status: Literal[STATUSES] | None = None, lab: str | None = None,
                        kind: Literal[KINDS] | None = None) -> Page[AgreementRead]:
        """`status` is the effective status; `lab` matches the discloser or any party."""
        with session_scope(write=False) as session:
            rows, cursor = service.list_agreements(session, principal, page, status=status,
                                                   lab=lab, kind=kind)
            return Page(items=service.read_agreements(session, principal, rows),
                        next_cursor=cursor)

    @post("/")
    def draft_agreement(self, data: AgreementCreate,
                        principal: Principal) -> Response[AgreementRead]:
        with session_scope() as session:
            agreement = service.create_agreement(session, principal, data)
            return with_etag(service.read_agreement(session, principal, agreement), 201)

    @post("/from-template")
    def draft_from_template(self, data: TemplateIn,
                            principal: Principal) -> Response[AgreementRead]:
        with session_scope() as session:
            agreement = service.instantiate_template(
                session, principal, data.template, data.discloser, data.parties, data.scope,
                data.starts_at, data.ends_at, data.confidential_until, data.title)
            return with_etag(service.read_agreement(session, principal, agreement), 201)

    @get("/{agreement_id:int}", opt=PUBLIC_ETAG)
    def get_agreement(self, agreement_id: Id, principal: Principal) -> Response[AgreementRead]:
        with session_scope(write=False) as session:
            agreement = service.get_agreement(session, principal, agreement_id)
            return with_etag(service.read_agreement(session, principal, agreement))

    @patch("/{agreement_id:int}")
    def revise_agreement(self, agreement_id: Id, data: AgreementUpdate, request: Request,
                         principal: Principal) -> Response[AgreementRead]:
        data.version = expected_version(request, data.version)
        with session_scope() as session:
            agreement = service.revise_agreement(session, principal, agreement_id, data)
            return with_etag(service.read_agreement(session, principal, agreement))

    @post("/{agreement_id:int}/transitions", status_code=200)
    def transition_agreement(self, agreement_id: Id, data: TransitionIn, request: Request,
                             principal: Principal) -> Response[AgreementRead]:
        with session_scope() as session:
            agreement = service.transition_agreement(
                session, principal, agreement_id, data.to,
                expected_version(request, data.version), data.reason)
            return with_etag(service.read_agreement(session, principal, agreement))

    @post("/{agreement_id:int}/signatures", status_code=201, opt={"version": "optional"})
    def sign_agreement(self, agreement_id: Id, data: SignIn, request: Request,
                       principal: Principal) -> Response[AgreementRead]:
        with session_scope() as session:
            agreement = service.sign_agreement(session, principal, agreement_id, data.lab,
                                               expected_version(request, data.version))
            return with_etag(service.read_agreement(session, principal, agreement), 201)
