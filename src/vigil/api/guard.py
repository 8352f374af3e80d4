"""What every route checks before its body is parsed: the caller's key and the route's role,
then unique JSON keys.

FastAPI parses a route's body before it solves the route's dependencies, so a malformed body
was answered 422 before the key was checked (telling an anonymous caller how its input was
read), and before the route's role was (telling a key of another role). :class:`KeyFirst`
authenticates the key of every API request first (401 or 429), holds it to the roles the
route's operation requires in the OpenAPI document (403; the scopes of its security
requirement, :func:`vigil.api.deps.require`), and reads a JSON body once to
refuse duplicate keys: JSON parsers keep the last of
``{"amount": "1.00", "amount": "90000.00"}``, so what a log or a proxy saw and what was decided
could differ. The decision routes, answered at the front door, call :func:`reject_duplicate_keys`
themselves after their own key check.

>>> reject_duplicate_keys(b'{"amount": "1.00", "card": {"amount": 2}}')
>>> reject_duplicate_keys(b'[{"amount": "1.00", "amount": "90000.00"}]')
Traceback (most recent call last):
...
vigil.api.problems.ProblemError: invalid amount: given twice in one JSON object
>>> reject_duplicate_keys(b'{"broken')   # left to the parser that reports it, naming where
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.api.conformance import Conformance
from vigil.api.deps import authenticate, ensure_role
from vigil.api.keys import Role
from vigil.api.problems import FieldError, error_response, invalid


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                message = "given twice in one JSON object"
                raise invalid([FieldError(field=key, message=message, type="duplicate_key")])
            seen.add(key)
    return out


def reject_duplicate_keys(body: bytes) -> None:
    """A 422 problem naming the first key given twice in one object of the JSON ``body``;
    nothing for unique keys or a body that is not JSON (its parser reports that)."""
    try:
        json.loads(body, object_pairs_hook=_unique)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


def _reject_unknown_query(request: Request) -> None:
    """A 422 naming each query parameter the operation does not take (a misspelt filter
    would otherwise be ignored, and widen what is read) or takes once but was given twice."""
    if not request.query_params:
        return
    conformance = Conformance.of(request.app)
    method, path = request.method, request.url.path
    names = [name for name, _ in request.query_params.multi_items()]
    errors = [
        FieldError(field=n, message="unknown query parameter", type="extra_forbidden")
        for n in conformance.unknown_query(method, path, names)
    ] + [
        FieldError(field=n, message="given more than once; it takes one value", type="repeated")
        for n in conformance.repeated_query(method, path, names)
    ]
    if errors:
        raise invalid(errors)


def _reject_undecodable(body: bytes) -> None:
    """A 422 naming ``body`` when a JSON body is not UTF-8 (FastAPI would answer 400)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        error = FieldError(field="body", message=f"not UTF-8: {exc.reason} at byte {exc.start}",
                           type="encoding")  # fmt: skip
        raise invalid([error]) from None


class KeyFirst:
    """A plain ASGI middleware in front of the API routes (every ``/v1/`` route needs a key):
    the key is authenticated, and held to the route's roles, before anything reads the body
    (401, 429 or 403; the route's own dependency checks its role again), unknown query
    parameters are refused (:mod:`vigil.api.conformance`), then a JSON body is read once,
    refused if it is not UTF-8 or repeats a key, and handed on unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            principal = await authenticate(request)
            for role in Conformance.of(request.app).roles(request.method, request.url.path):
                ensure_role(principal, Role(role))
            _reject_unknown_query(request)
            if not _is_json(scope):
                await self.app(scope, receive, send)
                return
            body = await request.body()
            _reject_undecodable(body)
            reject_duplicate_keys(body)
        except Exception as exc:  # answered as the app's own handlers would
            state = scope["app"].state if "app" in scope else None
            on_error = getattr(getattr(state, "metrics", None), "error", None)
            await error_response(exc, scope["path"], on_error)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
