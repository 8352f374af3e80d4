"""Who is looking at a workbench page, and whether they may: the session cookie, its key still
active, the page's role, and the CSRF token of every form.

Pages depend on :func:`viewer` (any signed-in analyst or admin) or :func:`admin`. No session, or
an expired or forged one, sends the browser to the sign-in page; a session whose key has since
been revoked is no session; a missing role is a 403 page. Every state-changing request carries
the session's CSRF token, in the form's ``csrf`` field or the ``X-CSRF-Token`` header htmx sends.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from vigil.api.keys import Principal, Role
from vigil.web.session import COOKIE, Session, Signer

CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class SignInRequired(Exception):
    """No valid session: answered by a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageRefused(Exception):
    """A signed-in viewer without the page's role, or a form without its CSRF token."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in analyst: their session and the principal their key stands for."""

    session: Session

    @property
    def principal(self) -> Principal:
        s = self.session
        return Principal(key_id=s.key_id, name=s.name, roles=s.roles)

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def is_admin(self) -> bool:
        return self.session.may(Role.ADMIN)

    @property
    def is_analyst(self) -> bool:
        return self.session.may(Role.ANALYST)


def signer(request: Request) -> Signer:
    return request.app.state.web_signer


async def _viewer(request: Request) -> Viewer:
    session = signer(request).loads(request.cookies.get(COOKIE))
    if session is not None:
        row = await run_in_threadpool(request.app.state.store.get_api_key, session.key_id)
        if row is None or row["revoked_at"] is not None:
            session = None
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    return Viewer(session)


def needs(role: Role) -> Callable[[Viewer], Awaitable[Viewer]]:
    """A dependency admitting signed-in viewers whose key holds ``role``."""

    async def check(viewer: Annotated[Viewer, Depends(_viewer)]) -> Viewer:
        if not viewer.session.may(role):
            raise PageRefused(403, f"This page needs the {role.value} role; your key lacks it.")
        return viewer

    check.__name__ = f"needs_{role.value}"
    return check


async def any_viewer(viewer: Annotated[Viewer, Depends(_viewer)]) -> Viewer:
    """Signed in with an analyst or an admin key."""
    if not (viewer.is_analyst or viewer.is_admin):
        raise PageRefused(403, "The workbench needs the analyst or admin role.")
    return viewer


AnyViewer = Annotated[Viewer, Depends(any_viewer)]
AnalystViewer = Annotated[Viewer, Depends(needs(Role.ANALYST))]
AdminViewer = Annotated[Viewer, Depends(needs(Role.ADMIN))]


def next_path(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another host).

    >>> next_path("/cases/3?x=1"), next_path("//evil.example/"), next_path("https://x")
    ('/cases/3?x=1', '/queue', '/queue')
    """
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/queue"
    return value


def sign_in_url(path: str) -> str:
    return f"/sign-in?next={quote(path, safe='')}"


async def form_fields(request: Request) -> dict[str, list[str]]:
    """A URL-encoded form body (the workbench's forms post nothing else)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return parse_qs(body, keep_blank_values=True)


def check_csrf(request: Request, fields: dict[str, list[str]], expected: str) -> None:
    """Refuse (403) a form whose CSRF token is missing or not the session's."""
    given = request.headers.get(CSRF_HEADER) or (fields.get(CSRF_FIELD) or [""])[0]
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise PageRefused(403, "The form's CSRF token is missing or stale: reload and retry.")


async def posted(request: Request, viewer: Viewer) -> dict[str, list[str]]:
    """The form of a state-changing request, once its CSRF token is checked."""
    fields = await form_fields(request)
    check_csrf(request, fields, viewer.csrf)
    return fields


def first(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return values[0].strip() if values else ""
