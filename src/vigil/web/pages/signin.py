"""Signing in with an API key of role analyst or admin, and signing out.

The key is checked as the API checks it (:func:`vigil.api.deps.check_key`), then forgotten:
the session cookie names the key's id, never the key. The sign-in form has its own CSRF token
(a random value in a short-lived cookie, repeated in the form), so no other site can sign a
browser in under a key of its choosing.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from vigil.api.deps import check_key
from vigil.api.keys import Principal, Role
from vigil.api.problems import ProblemError
from vigil.web.auth import CSRF_FIELD, AnyViewer, first, form_fields, next_path, posted, signer
from vigil.web.render import page
from vigil.web.session import COOKIE

log = logging.getLogger("vigil.web")
SIGN_IN_COOKIE = "vigil_sign_in"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form(request: Request, next_to: str, error: str | None, status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "sign_in.html",
        {"csrf": token, "next": next_to, "error": error, "viewer": None},
        status=status,
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=900,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/sign-in",
    )
    return response


async def _principal(request: Request, key: str) -> Principal | str:
    """The key's principal if it may use the workbench, else why not."""
    ring = request.app.state.keys
    for role in (Role.ANALYST, Role.ADMIN):
        try:
            return await check_key(ring, key, role)
        except ProblemError as exc:
            if exc.status != 403:
                return "That key is unknown, malformed or revoked."
    return "That key has neither the analyst nor the admin role."


def router() -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/")
    async def home() -> RedirectResponse:
        return RedirectResponse("/queue", status_code=303)

    @web.get("/sign-in")
    async def sign_in_form(
        request: Request, next: Annotated[str | None, Query()] = None
    ) -> Response:
        return _form(request, next_path(next), None)

    @web.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        fields = await form_fields(request)
        next_to = next_path(first(fields, "next"))
        expected = request.cookies.get(SIGN_IN_COOKIE, "")
        given = first(fields, CSRF_FIELD)
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return _form(request, next_to, "The form expired: sign in again.", status=403)
        found = await _principal(request, first(fields, "api_key"))
        if isinstance(found, str):
            log.warning("workbench sign-in refused: %s", found, extra={"outcome": "refused"})
            return _form(request, next_to, found, status=401)
        sign = signer(request)
        session = sign.issue(found.key_id, found.name, found.roles)
        log.info(
            "workbench sign-in by %s",
            found.name,
            extra={"key_id": found.key_id, "outcome": "signed_in"},
        )
        response = RedirectResponse(next_to, status_code=303)
        response.set_cookie(
            COOKIE,
            sign.dumps(session),
            max_age=int(sign.lifetime),
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path="/",
        )
        response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
        return response

    @web.post("/sign-out")
    async def sign_out(request: Request, viewer: AnyViewer) -> Response:
        await posted(request, viewer)
        log.info("workbench sign-out by %s", viewer.name, extra={"key_id": viewer.principal.key_id})
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return web
