"""create_app(): the only place the registry is wired together."""

from __future__ import annotations

import os

os.environ.setdefault("LITESTAR_WARN_IMPLICIT_SYNC_TO_THREAD", "0")

import pydantic  # noqa: E402
from litestar import Litestar, get  # noqa: E402
from litestar.di import Provide  # noqa: E402
from litestar.exceptions import HTTPException, ValidationException  # noqa: E402
from litestar.openapi import OpenAPIConfig  # noqa: E402
from litestar.openapi.spec import Components, SecurityScheme  # noqa: E402
from litestar.static_files import create_static_files_router  # noqa: E402

from app.errors import DomainError  # noqa: E402
from app.http import (PUBLIC, StrictRequest, auth_guard, domain_error_handler,  # noqa: E402
                      harden_response, http_error_handler, input_guard,
                      internal_error_handler,
                      provide_page, provide_principal, pydantic_error_handler,
                      repair_options, validation_handler)
from app.openapi import ProblemAwareJson  # noqa: E402
from app.settings import Settings, configure, get_settings  # noqa: E402
from app.web import html_error_handlers, template_config, web_route_handlers  # noqa: E402
from app.web.auth import browser_middleware  # noqa: E402
from app.web.auth_sessions import DatabaseSessionStore  # noqa: E402


@get("/healthz", opt=PUBLIC, sync_to_thread=False)
def healthz() -> dict:
    return {"status": "ok"}


def route_handlers() -> list:
    from app.agreements.api import AgreementController
    from app.auth.api import AccountController
    from app.checkpoints.api import CheckpointController
    from app.evals.api import CheckpointCardController, EvalController, ModelCardController
    from app.events.api import EventController
    from app.incidents.api import IncidentController
    from app.labs.api import LabController
    from app.models.api import ModelController
    from app.norms.api import ComplianceController, PolicyController
    from app.plans.api import PlanController

    return [healthz, AccountController, LabController, ModelController, PlanController,
            EventController, AgreementController, IncidentController,
            CheckpointController, EvalController, ModelCardController, PolicyController,
            ComplianceController, CheckpointCardController]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = configure(settings) if settings else get_settings()
    from app.norms.loader import load_policies

    load_policies()  # a malformed policy stops start-up with file:line and field
    app = Litestar(
        route_handlers=[*route_handlers(), *web_route_handlers(),
                        create_static_files_router("/static", ["static"], opt=PUBLIC)],
        guards=[auth_guard, input_guard],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False),
                      "page": Provide(provide_page, sync_to_thread=False)},
        exception_handlers=html_error_handlers({DomainError: domain_error_handler,
                            ValidationException: validation_handler,
                            HTTPException: http_error_handler,
                            pydantic.ValidationError: pydantic_error_handler,
                            500: internal_error_handler,
                            Exception: internal_error_handler}),
        template_config=template_config(),
        # Web sign-in: server-side sessions kept in the database, CSRF on every page form.
        middleware=browser_middleware(settings),
        stores={"sessions": DatabaseSessionStore()},
        request_class=StrictRequest,
        before_send=[harden_response],
        # Swagger UI is dropped: it loads scripts from a CDN and inline, which the CSP
        # forbids. The document itself stays at /schema/openapi.json.
        openapi_config=OpenAPIConfig(
            title="Stagegate", version="1.0.0", path="/schema",
            render_plugins=[ProblemAwareJson()],
            components=Components(security_schemes={"bearer": SecurityScheme(
                type="http", scheme="bearer",
                description="an API token: `Authorization: Bearer sg_...`")})),
        **_startup_hooks(_worker_hooks(settings)),
    )
    repair_options(app)
    return app


def _startup_hooks(hooks: dict) -> dict:
    """Stored HTML from an older Markdown renderer is re-rendered before serving."""
    from app.markdown import rerender_on_startup

    return hooks | {"on_startup": [rerender_on_startup, *hooks.get("on_startup", [])]}


def _worker_hooks(settings: Settings) -> dict:
    """The embedded evaluation worker runs beside the web app unless disabled."""
    if not settings.inprocess_worker:
        return {}
    from app.evals.worker import start_inprocess_worker

    stops: list = []
    return {"on_startup": [lambda: stops.append(start_inprocess_worker(settings))],
            "on_shutdown": [lambda: [stop() for stop in stops]]}
