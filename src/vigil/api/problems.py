"""Errors as RFC 9457 problem details (``application/problem+json``), naming the field at fault.

Every error the API returns has the same shape: ``type``, ``title``, ``status``, ``detail``,
and for invalid input an ``errors`` list with one ``{field, message}`` per broken field, the
field written the way a client would point at it (``[2].amount``, ``limit``).

>>> field_name(("body", 2, "amount")), field_name(("query", "limit")), field_name(())
('[2].amount', 'limit', 'body')
>>> field_name((), "Value error, amount: required on a single withdrawal")
'amount'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
VALIDATION_TYPE = "urn:vigil:problem:invalid-request"
_SOURCES = ("body", "query", "path", "header", "cookie")
# The domain models raise "field: what is wrong"; such a message names its field.
_NAMED = re.compile(r"^(?:Value error, )?([A-Za-z_][A-Za-z0-9_/]*): ")


class FieldError(BaseModel):
    """One broken field of a request; in a posted rule file, also its rule and line."""

    field: str
    message: str
    type: str
    rule: str | None = None
    line: int | None = None


class Problem(BaseModel):
    """An RFC 9457 problem details document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(StarletteHTTPException):
    """Raise anywhere in a request to answer with a problem document.

    An HTTP exception, so one raised while FastAPI reads a body (a body past the size limit,
    counted as it arrives) reaches the handlers as itself, not as FastAPI's 400 "error parsing
    the body"."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str = "about:blank",
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, detail, dict(headers or {}))
        self.status = status
        self.detail = detail
        self.title = title
        self.type = type_
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return self.detail


def field_name(loc: Sequence[int | str], message: str = "") -> str:
    """The field a pydantic error location points at, as a client writes it."""
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    if not out or not isinstance(parts[-1], str) or out.endswith("]"):
        named = _NAMED.match(message)
        if named:
            out = f"{out}.{named.group(1)}" if out else named.group(1)
    return out or "body"


def field_errors(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """Pydantic's error dicts as field errors (without pydantic's "Value error, " prefix)."""
    out = []
    for e in errors:
        message = str(e.get("msg", ""))
        out.append(
            FieldError(
                field=field_name(e.get("loc", ()), message),
                message=message.removeprefix("Value error, "),
                type=str(e.get("type", "")),
            )
        )
    return out


def invalid(errors: list[FieldError]) -> ProblemError:
    """The 422 for a request whose fields are wrong."""
    named = ", ".join(dict.fromkeys(e.field for e in errors))
    return ProblemError(
        422,
        f"invalid {named}: {errors[0].message}" if errors else "invalid request",
        title="Invalid request",
        type_=VALIDATION_TYPE,
        errors=errors,
    )


def from_validation_error(exc: ValidationError, prefix: Sequence[int | str] = ()) -> ProblemError:
    return invalid(
        field_errors({**e, "loc": (*prefix, *e["loc"])} for e in exc.errors(include_url=False))
    )


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    errors: Sequence[FieldError] | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    problem = Problem(
        type=type_,
        title=title or _TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=instance,
        errors=list(errors) if errors is not None else None,
    )
    return Response(
        problem.model_dump_json(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def error_response(
    exc: Exception, path: str, on_error: Callable[[int], None] | None = None
) -> Response:
    """The answer to any error raised in a request, expected or not: a problem document."""
    if isinstance(exc, ClientDisconnect):
        # The client left mid-request (a load generator stopping, a timeout): nobody reads the
        # answer, and it is not a server failure to log.
        return Response(status_code=499)
    if isinstance(exc, ProblemError):
        pass
    elif isinstance(exc, RequestValidationError):
        exc = invalid(field_errors(exc.errors()))
    elif isinstance(exc, StarletteHTTPException):
        exc = ProblemError(exc.status_code, str(exc.detail), headers=exc.headers)
    else:
        log.error("unhandled error on %s", path, exc_info=exc)
        exc = ProblemError(500, "the server failed; the error is logged")
    if on_error is not None:
        on_error(exc.status)
    return problem_response(
        exc.status,
        exc.detail,
        title=exc.title,
        type_=exc.type,
        errors=exc.errors,
        instance=path,
        headers=exc.headers,
    )


def install(app: FastAPI, on_error: Callable[[int], None] | None = None) -> None:
    """Answer every error raised in a request with :func:`error_response`."""

    async def handle(request: Request, exc: Exception) -> Response:
        response = error_response(exc, request.url.path, on_error)
        if response.status_code == 405:
            # Every method of the path, not only those of the first route FastAPI matched.
            from vigil.api.conformance import Conformance

            allowed = Conformance.of(request.app).allowed(request.url.path)
            if allowed:
                response.headers["Allow"] = allowed
        return response

    for kind in (
        ClientDisconnect,
        ProblemError,
        RequestValidationError,
        StarletteHTTPException,
        Exception,
    ):
        app.add_exception_handler(kind, handle)


# For OpenAPI: every route can answer with these.
PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The documented problem answers; a route that checks a key (401) may also answer 429
    (too many failed key checks, :mod:`vigil.api.attempts`)."""
    if 401 in statuses and 429 not in statuses:
        statuses = (*statuses, 429)
    return {
        status: {"description": _TITLES.get(status, "Error"), "content": PROBLEM_CONTENT}
        for status in statuses
    }


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Every error response of an OpenAPI document as what it is: a problem document.

    FastAPI documents the 422 of a route without its own as ``application/json`` holding its
    ``HTTPValidationError``; vigil answers every error as ``application/problem+json``
    (:func:`error_response`), so the document says so, and the unused models go.
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if str(status)[:1] in ("4", "5"):
                    response["content"] = PROBLEM_CONTENT
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema
