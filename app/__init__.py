"""create_app(): the only place the registry is wired together."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("LITESTAR_WARN_IMPLICIT_SYNC_TO_THREAD", "0")

# Nothing heavy is imported at module level: every CLI command imports `app.*`, and
# `stagegate --help` must not load the web stack. create_app() imports it.
if TYPE_CHECKING:
    from litestar import Litestar

    from app.settings import Settings

# Beside the package, not the working directory: `stagegate serve` started from any
# folder serves the same files.
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def route_handlers() -> list:
    from app.agreements.api import AgreementController
    from app.auth.api import AccountController
    from app.checkpoints.api import CheckpointController
    from app.evals.api import CheckpointCardController, EvalController, ModelCardController
    from app.evals.remote_api import WorkerController
    from app.events.api import EventController
    from app.health import healthz
    from app.incidents.api import IncidentController
    from app.labs.api import LabController
    from app.models.api import ModelController
    from app.norms.api import ComplianceController, PolicyController
    from app.plans.api import PlanController
    from app.transparency.api import LogController, TileController

    return [healthz, AccountController, LabController, ModelController, PlanController,
            EventController, AgreementController, IncidentController,
            CheckpointController, EvalController, ModelCardController, PolicyController,
            ComplianceController, CheckpointCardController, LogController, TileController,
            WorkerController]


def create_app(settings: Settings | None = None) -> Litestar:
    import pydantic
    from litestar import Litestar
    from litestar.di import Provide
    from litestar.exceptions import HTTPException, ValidationException
    from litestar.openapi import OpenAPIConfig
    from litestar.openapi.spec import Components, SecurityScheme
    from litestar.static_files import create_static_files_router

    from app.conditional import conditional_get
    from app.errors import DomainError
    from app.http import (
        PUBLIC,
        StrictRequest,
        auth_guard,
        domain_error_handler,
        harden_response,
        http_error_handler,
        input_guard,
        internal_error_handler,
        provide_page,
        provide_principal,
        pydantic_error_handler,
        repair_options,
        request_budget_middleware,
        validation_handler,
    )
    from app.openapi import ProblemAwareJson
    from app.settings import configure, get_settings
    from app.web import html_error_handlers, template_config, web_route_handlers
    from app.web.auth import browser_middleware
    from app.web.auth_sessions import DatabaseSessionStore

    settings = configure(settings) if settings else get_settings()
    from app.listeners import install_listeners
    from app.norms.loader import load_policies

    install_listeners()  # session listeners: here (and in the CLI), never on import

    load_policies()  # a malformed policy stops start-up with file:line and field
    app = Litestar(
        route_handlers=[*route_handlers(), *web_route_handlers(),
                        create_static_files_router("/static", [STATIC_DIR], opt=PUBLIC)],
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
        # Conditional GET first: a 304 replaces any 200 that carries a matching ETag.
        # Web sign-in: server-side sessions kept in the database, CSRF on every page form.
        # The read cache before sessions and CSRF: an anonymous hit needs neither.
        # The request budget outermost: it bounds everything below (app/http.py).
        middleware=[request_budget_middleware, conditional_get, *_read_cache(settings),
                    *browser_middleware(settings)],
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
        logging_config=_logging_config(),
        **_startup_hooks(_worker_hooks(settings)),
    )
    repair_options(app)
    return app


_LOGGING = None


def _logging_config():
    """Litestar's default logging, configured once per process: its dictConfig starts a
    queue-listener thread that nothing stops, one more with every create_app (tests and
    backup restores build many apps; a test worker ended with ~690 idle threads)."""
    global _LOGGING
    if _LOGGING is None:
        from litestar.logging import LoggingConfig

        class OncePerProcess(LoggingConfig):
            def configure(self):
                if "_get_logger" not in self.__dict__:
                    self.__dict__["_get_logger"] = super().configure()
                return self.__dict__["_get_logger"]

        _LOGGING = OncePerProcess()
    return _LOGGING


def _startup_hooks(hooks: dict) -> dict:
    """Stored HTML from an older Markdown renderer is re-rendered before serving; the
    start-up heap is frozen last."""
    from app.markdown_rerender import rerender_on_startup

    return hooks | {"on_startup": [rerender_on_startup, *hooks.get("on_startup", []),
                                   freeze_start_up_heap]}


_FROZEN = False


def freeze_start_up_heap() -> None:
    """Move what start-up left alive (modules, routes, compiled templates, ~150,000
    objects) out of the cyclic garbage collector's reach, once per process. They live as
    long as the process, yet every full collection scanned them: a 60-80 ms pause in
    whichever request triggered it, the slowest 1 % of incident searches at 1M rows.
    Collected first, so no garbage is frozen; later apps in the same process (tests)
    are not frozen again."""
    global _FROZEN
    if not _FROZEN:
        import gc

        gc.collect()
        gc.freeze()
        _FROZEN = True


def _read_cache(settings: Settings) -> list:
    from app.readcache import read_cache_middleware

    return [read_cache_middleware] if settings.read_cache else []


def _worker_hooks(settings: Settings) -> dict:
    """The embedded evaluation worker runs beside the web app unless disabled."""
    if not settings.inprocess_worker:
        return {}
    from app.evals.embedded import start_inprocess_worker

    stops: list = []
    return {"on_startup": [lambda: stops.append(start_inprocess_worker(settings))],
            "on_shutdown": [lambda: [stop() for stop in stops]]}
