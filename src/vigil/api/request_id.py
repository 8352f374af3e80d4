"""Request ids: every HTTP request has one, answered in ``X-Request-ID`` and carried by the log
lines written while it is served.

The id is the client's ``X-Request-ID`` when it sends a usable one (1 to
:data:`MAX_LENGTH` bytes), so a caller can follow its own id through vigil's logs; otherwise
vigil makes one. Made ids are a per-process random prefix and a counter (``<12 hex>-<hex>``):
unique across processes and restarts in practice, and without a system call or a UUID per
request (the decision routes' front door, :mod:`vigil.api.direct`, pays for this on every
decision). The id is bound in structlog's context variables (:func:`bound`) for the request,
so every line logged meanwhile has ``request_id`` (:mod:`vigil.logs`).

:class:`RequestId` does this for every route FastAPI serves, as a plain ASGI middleware (no
task or queue per request, unlike Starlette's ``BaseHTTPMiddleware``); the front door does the
same itself.

>>> request_id([(b"x-request-id", b"abc-123")])
b'abc-123'
>>> made = request_id([]); made != request_id([]) and len(made) > 12
True
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Iterable, Mapping
from contextvars import Token
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "HEADER",
    "MAX_LENGTH",
    "RequestId",
    "accept",
    "bound",
    "new_request_id",
    "request_id",
    "unbind",
]

HEADER = b"x-request-id"
# Longer ids from a client are replaced: the id goes into every log line of the request.
MAX_LENGTH = 128

_bind = structlog.contextvars.bind_contextvars
_reset = structlog.contextvars.reset_contextvars


class _Ids:
    """A random prefix per process (drawn again in a forked child) and a counter."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.prefix = f"{random.SystemRandom().getrandbits(48):012x}-"
        self.counter = itertools.count(1)


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.renew)


def new_request_id() -> bytes:
    """A request id of this process's own: its prefix and the next number."""
    return f"{_IDS.prefix}{next(_IDS.counter):x}".encode("ascii")


def request_id(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The request's ``X-Request-ID`` if usable, else a new id (ASGI's raw header pairs)."""
    for name, value in headers:
        if name == HEADER:
            return value if 0 < len(value) <= MAX_LENGTH else new_request_id()
    return new_request_id()


def accept(value: bytes | None) -> bytes:
    """A client's header value (already found) if usable, else a new id."""
    return value if value is not None and 0 < len(value) <= MAX_LENGTH else new_request_id()


def bound(rid: bytes) -> Mapping[str, Token[Any]]:
    """Bind ``request_id`` for the log lines that follow; give the result to :func:`unbind`."""
    return _bind(request_id=rid.decode("latin-1"))


def unbind(tokens: Mapping[str, Token[Any]]) -> None:
    _reset(**tokens)


class RequestId:
    """Plain ASGI middleware: a request id per HTTP request, bound while it is served and
    answered in the ``X-Request-ID`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        header = (HEADER, rid)

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        tokens = bound(rid)
        try:
            await self.app(scope, receive, with_id)
        finally:
            unbind(tokens)
