"""Signing in with an API key of role analyst or admin, and signing out.

The key is checked as the API checks it (:func:`vigil.api.deps.authenticate`), then forgotten:
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

from vigil.api.deps import authenticate
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


async def _principal(request: Request, key: str) -> Principal | ProblemError:
    """The key's principal if it may use the workbench, else why not: checked once, with the
    client's address, so failed sign-ins count against the key id and the address as failed
    API calls do, and are refused alike once there are too many (429)."""
    try:
        principal = await authenticate(request, key or None)
    except ProblemError as exc:
        if exc.status == 429:
            return ProblemError(
                429,
                "Too many failed sign-ins for this key or from this address: wait "
                f"{exc.headers.get('Retry-After', '60')} s and try again.",
                headers=exc.headers,
            )
        return ProblemError(401, "That key is unknown, malformed or revoked.")
    if principal.may(Role.ANALYST) or principal.may(Role.ADMIN):
        return principal
    return ProblemError(401, "That key has neither the analyst nor the admin role.")


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
        if isinstance(found, ProblemError):
            why = found.detail
            log.warning("workbench sign-in refused: %s", why, extra={"outcome": "refused"})
            refused = _form(request, next_to, why, status=found.status)
            refused.headers.update(found.headers)
            return refused
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
