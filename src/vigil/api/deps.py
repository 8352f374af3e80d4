"""Request dependencies: who is calling (API key → roles), and the service behind the app.

Keys travel in the ``X-API-Key`` header. A missing or invalid key is 401, a valid key without
the route's role 403, a key id or client address with too many failed checks lately 429. The
hot path is a dict lookup: the argon2 check runs once per key (in a worker thread, so the event
loop keeps deciding meanwhile) and its verdict is cached.

>>> require(Role.ANALYST).__name__
'require_analyst'
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from vigil.api.attempts import KeyThrottled
from vigil.api.keys import KeyRing, Principal, Role
from vigil.api.problems import ProblemError
from vigil.api.service import DecisionService

API_KEY_HEADER = "X-API-Key"
API_KEY_SCHEME = "ApiKey"
api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name=API_KEY_SCHEME,
    auto_error=False,
    description="An API key from `vigil keys create` (vgl_<id>_<secret>)",
)
_CHALLENGE = {"WWW-Authenticate": 'ApiKey header="X-API-Key"'}


async def authorize(request: Request, role: Role, key: str | None = None) -> Principal:
    """The caller's principal if its key holds ``role``; else a 401 or 403 problem."""
    if key is None:
        key = request.headers.get(API_KEY_HEADER)
    client = request.client.host if request.client is not None else None
    return await check_key(request.app.state.keys, key, role, client)


async def authenticate(request: Request, key: str | None = None) -> Principal:
    """The caller's principal, whatever its roles; else a 401 or 429 problem. The key is the
    request's header unless given (the workbench's sign-in form)."""
    client = request.client.host if request.client is not None else None
    if key is None:
        key = request.headers.get(API_KEY_HEADER)
    return await _principal(request.app.state.keys, key, client)


async def check_key(
    ring: KeyRing, key: str | None, role: Role, client: str | None = None
) -> Principal:
    """The principal of ``key`` if it holds ``role``; else a 401, 403 or 429 problem."""
    principal = await _principal(ring, key, client)
    ensure_role(principal, role)
    return principal


def ensure_role(principal: Principal, role: Role) -> None:
    """A 403 problem unless ``principal`` holds ``role``."""
    if not principal.may(role):
        raise ProblemError(
            403, f"{API_KEY_HEADER}: key {principal.key_id} lacks the {role.value} role"
        )


async def _principal(ring: KeyRing, key: str | None, client: str | None) -> Principal:
    if not key:
        raise ProblemError(401, f"{API_KEY_HEADER}: no API key given", headers=_CHALLENGE)
    entry = ring.cached(key)
    if entry is not None:
        principal = entry.principal
    else:
        try:
            principal = await run_in_threadpool(ring.verify, key, client)
        except KeyThrottled as exc:
            retry = {"Retry-After": str(exc.retry_after)}
            raise ProblemError(429, f"{API_KEY_HEADER}: {exc}", headers=retry) from None
    if principal is None:
        raise ProblemError(
            401, f"{API_KEY_HEADER}: unknown, malformed or revoked key", headers=_CHALLENGE
        )
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits only keys holding ``role``."""

    # The role as the security requirement's scope: the OpenAPI document names it, and
    # vigil.api.guard.KeyFirst reads it from there to refuse a key without it before the body.
    async def check(
        request: Request, key: str | None = Security(api_key, scopes=[role.value])
    ) -> Principal:
        return await authorize(request, role, key or "")

    check.__name__ = f"require_{role.value}"
    return check


# Async: FastAPI runs a plain ``def`` dependency in its thread pool, a thread hop per request.
async def service(request: Request) -> DecisionService:
    return request.app.state.service


ServiceDep = Annotated[DecisionService, Depends(service)]
