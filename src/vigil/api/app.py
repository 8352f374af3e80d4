"""The FastAPI application: ``create_app(settings)`` builds it, ``vigil serve`` runs it.

Routes (roles in brackets): ``POST /v1/transactions``, ``POST /v1/logins`` [ingest];
``POST /v1/feedback``, ``GET /v1/decisions/{id}``, ``GET /v1/risk-events``,
``GET /v1/profiles/{entity}/{id}`` [analyst]; ``/v1/admin/keys`` and any admin extension
(:mod:`vigil.api.extensions`: ``/v1/admin/rules``, ``/v1/admin/models``),
``DELETE /v1/admin/users/{id}`` [admin]; ``GET /health``, ``GET /metrics``, and the API's own
pages ``GET /docs`` and ``GET /redoc``, with their assets served from ``/docs/assets`` [open];
the analyst workbench's pages at ``/`` (:mod:`vigil.web`, signed in with an analyst or admin key).

The decision routes are answered at the front door (:class:`VigilAPI`, :mod:`vigil.api.direct`):
it serves a quarter more single-event decisions a second than FastAPI's layers (docs/service.md,
measured back to back). Every other request passes two plain ASGI layers of ours, the request
id (:mod:`vigil.api.request_id`, which the front door does itself too) and the size check.

>>> app = create_app(Settings(database_url="sqlite://"))
>>> sorted(p for p in app.openapi()["paths"])[:3]
['/health', '/metrics', '/v1/admin/keys']
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import Receive, Scope, Send

from vigil import __version__, logs, web
from vigil.api import collector, lifeline, problems
from vigil.api.deps import require
from vigil.api.direct import DirectRoutes
from vigil.api.extensions import admin_routers
from vigil.api.guard import KeyFirst
from vigil.api.keys import KeyRing, Role
from vigil.api.limits import BodySizeLimit
from vigil.api.metrics import ApiMetrics
from vigil.api.request_id import RequestId
from vigil.api.routers import (
    decisions,
    events,
    feedback,
    health,
    keys,
    profiles,
    risk_events,
    users,
)
from vigil.api.service import DecisionService
from vigil.config import Settings
from vigil.domain import Decision, Login, Transaction
from vigil.profiles import ProfileStore
from vigil.storage import Store

DESCRIPTION = """Real-time fraud decisions on logins and card transactions.

Authenticate with an API key in the `X-API-Key` header (`vigil keys create`). Roles:
`ingest` sends events, `analyst` reads decisions and profiles and gives feedback, `admin`
manages keys, rules and models. Errors are RFC 9457 problem details
(`application/problem+json`) naming the field at fault. A decision is answered once it is
committed. Decisions are idempotent by event id: re-sending the same event, even after a
restart, returns the decision first taken on it; another event under a used id is a 409."""

TAGS = [
    {"name": "decisions", "description": "Send events, get decisions (`ingest`)"},
    {"name": "analysis", "description": "Decisions, risk events, profiles, feedback (`analyst`)"},
    {"name": "admin", "description": "Keys, and rule and model administration (`admin`)"},
    {"name": "operations", "description": "Health and metrics (no key)"},
]


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    extra_admin_routers: Sequence[APIRouter] = (),
    hasher: PasswordHasher | None = None,
    tune_gc: bool = False,
    profile_store: ProfileStore | None = None,
) -> FastAPI:
    """The API on ``store`` (or on ``settings.database_url``, opened and closed with the app).

    The engine is built when the app starts (its lifespan), not here, so building an app is
    cheap; ``extra_admin_routers`` join the discovered admin extensions under ``/v1/admin``.
    ``profile_store`` overrides the store ``settings.profiles_url`` names (tests use it to give
    each run a Redis key prefix of its own). ``tune_gc`` (for a server process, not a test) sets
    the garbage collector for a long-lived heap once the engine is loaded.
    """
    settings = settings or Settings()
    owned = store is None
    if store is None:
        store = Store(settings.database_url)
    store.init_schema()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: VigilAPI) -> AsyncIterator[None]:
        service = DecisionService(settings, app.state.store, metrics, profiles=profile_store)
        app.state.service = service
        if _traced(app):  # OpenTelemetry is set up: FastAPI's instrumentation sees every route
            app.direct = None
        if tune_gc:
            collector.tune_gc()
        service.start()
        try:
            yield
        finally:
            service.close()
            if owned:
                app.state.store.close()

    app = VigilAPI(
        title="vigil",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their scripts from a CDN: ours, below, do not
        redoc_url=None,
    )
    _offline_docs(app)
    app.state.store = store
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.keys = KeyRing(store, ttl=settings.api.key_cache_seconds, hasher=hasher)
    problems.install(app, metrics.error)
    decision_routes = events.routes(settings.api.max_batch)
    app.include_router(events.router(decision_routes))
    app.direct = DirectRoutes(
        decision_routes, max_bytes=settings.api.max_body_bytes, on_error=metrics.error
    )
    app.add_middleware(KeyFirst)  # the key before the body, unique JSON keys
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes, on_error=metrics.error)
    app.add_middleware(RequestId)  # added last, so outermost: a 413 has its request id too
    app.include_router(feedback.router())
    app.include_router(decisions.router())
    app.include_router(risk_events.router())
    app.include_router(profiles.router())
    app.include_router(keys.router())
    app.include_router(users.router())
    for extension in [*admin_routers(), *extra_admin_routers]:
        app.include_router(
            extension, prefix="/v1/admin", dependencies=[Depends(require(Role.ADMIN))]
        )
    app.include_router(health.router())
    web.mount(app, settings)  # the analyst workbench, at / (vigil.web)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


class VigilAPI(FastAPI):
    """FastAPI, with the decision routes answered before its own layers (``direct``)."""

    direct: DirectRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self.direct
        route = direct.route(scope) if direct is not None else None
        if direct is None or route is None:
            await super().__call__(scope, receive, send)
        else:
            await direct.answer(route, self.state, scope, receive, send)


def _traced(app: FastAPI) -> bool:
    """Whether FastAPI's own OpenTelemetry instrumentation is on (FastAPI 0.16x and later)."""
    telemetry = getattr(app, "_native_telemetry", None)
    return telemetry is not None and bool(telemetry.enabled())


# Where /docs and /redoc load their scripts, styles and icon from: vigil itself.
DOCS_ASSETS = "/docs/assets"
# Images from vigil only: ReDoc's footer would fetch Redocly's logo from their CDN (and hide it
# when that fails); with this the browser does not even try, so a closed network sees nothing.
DOCS_CSP = "img-src 'self' data:"


def _offline_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with every script, style and icon served by the app.

    FastAPI's own pages load them from a CDN, so in a closed network (a bank's) they show
    nothing. The files are the Swagger UI 5 and ReDoc builds the ``fastapi-offline`` package
    ships (only its files are used), under :data:`DOCS_ASSETS`.
    """
    app.mount(
        DOCS_ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets"
    )
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page


# The settings a `vigil serve --workers N` process builds its app from (JSON, set by serve).
SETTINGS_ENV = "VIGIL_SERVE_SETTINGS"


def worker_app() -> FastAPI:
    """The app of one of several server processes (uvicorn's factory, in each worker). A
    worker exits when the supervising ``vigil serve`` is gone, killed or not."""
    lifeline.watch(os.getppid())
    logs.configure_from_env()  # the log settings vigil serve was given
    return create_app(Settings.model_validate_json(os.environ[SETTINGS_ENV]), tune_gc=True)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the models the hand-parsed event routes refer to, every error
    documented as the problem document it is."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    _, defs = models_json_schema(
        [
            (Transaction, "validation"),
            (Login, "validation"),
            (Decision, "serialization"),
            (problems.Problem, "serialization"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model_schema in defs.get("$defs", {}).items():
        components.setdefault(name, model_schema)
    app.openapi_schema = problems.document_problems(schema)
    return schema
