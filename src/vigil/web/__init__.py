"""The analyst workbench: server-rendered pages (Jinja2, with htmx served by vigil) over the same
store, service and roles as the API, mounted at ``/`` by ``vigil serve`` (the API stays under
``/v1``). Nothing is fetched from another host: scripts, styles and maps are vigil's own.

Pages: sign-in and sign-out; the review queue (:mod:`~vigil.web.pages.queue`); a case
(:mod:`~vigil.web.pages.case`); entity pages; the overview; rules; models.

>>> from vigil.api.app import create_app
>>> from vigil.config import Settings
>>> app = create_app(Settings(database_url="sqlite://"))
>>> app.url_path_for("case_page", risk_event_id=3), app.url_path_for("queue")
('/cases/3', '/queue')
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from vigil.config import Settings
from vigil.web.auth import PageRefused, SignInRequired, sign_in_url
from vigil.web.render import page
from vigil.web.session import Signer, secret_from

STATIC = "/static"


def mount(app: FastAPI, settings: Settings, *, signer: Signer | None = None) -> None:
    """Serve the workbench from ``app``: its pages, its static files, its two error pages."""
    from vigil.web.pages import case, entities, models, overview, queue, rules, signin

    app.state.web_signer = signer or Signer(secret_from(settings.privacy.hmac_key))
    app.mount(STATIC, StaticFiles(packages=[("vigil.web", "static")]), name="web-static")
    for module in (signin, queue, case, entities, overview, rules, models):
        app.include_router(module.router())

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        if request.headers.get("HX-Request"):  # htmx follows no redirect: tell it where to go
            return Response(status_code=401, headers={"HX-Redirect": sign_in_url(exc.next_path)})
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    @app.exception_handler(PageRefused)
    async def _refused(request: Request, exc: PageRefused) -> Response:
        context = {"detail": exc.detail, "status": exc.status, "viewer": None}
        return page(request, "refused.html", context, exc.status)
