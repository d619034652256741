"""create_app(): the only place the registry is wired together."""

from __future__ import annotations

import os

os.environ.setdefault("LITESTAR_WARN_IMPLICIT_SYNC_TO_THREAD", "0")

import pydantic  # noqa: E402
from litestar import Litestar, get  # noqa: E402
from litestar.di import Provide  # noqa: E402
from litestar.exceptions import HTTPException, ValidationException  # noqa: E402
from litestar.openapi import OpenAPIConfig  # noqa: E402
from litestar.static_files import create_static_files_router  # noqa: E402

from app.errors import DomainError  # noqa: E402
from app.http import (PUBLIC, auth_guard, domain_error_handler, http_error_handler,  # noqa: E402
                      provide_page, provide_principal, pydantic_error_handler,
                      validation_handler)
from app.settings import Settings, configure, get_settings  # noqa: E402


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
    from app.plans.api import PlanController

    return [healthz, AccountController, LabController, ModelController, PlanController,
            EventController, AgreementController, IncidentController,
            CheckpointController, EvalController, ModelCardController,
            CheckpointCardController]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = configure(settings) if settings else get_settings()
    return Litestar(
        route_handlers=[*route_handlers(),
                        create_static_files_router("/static", ["static"], opt=PUBLIC)],
        guards=[auth_guard],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=False),
                      "page": Provide(provide_page, sync_to_thread=False)},
        exception_handlers={DomainError: domain_error_handler,
                            ValidationException: validation_handler,
                            HTTPException: http_error_handler,
                            pydantic.ValidationError: pydantic_error_handler},
        openapi_config=OpenAPIConfig(title="Stagegate", version="1.0.0", path="/schema"),
        **_worker_hooks(settings),
    )


def _worker_hooks(settings: Settings) -> dict:
    """The embedded evaluation worker runs beside the web app unless disabled."""
    if not settings.inprocess_worker:
        return {}
    from app.evals.worker import start_inprocess_worker

    stops: list = []
    return {"on_startup": [lambda: stops.append(start_inprocess_worker(settings))],
            "on_shutdown": [lambda: [stop() for stop in stops]]}
