"""The request-size limit: a body larger than ``max_bytes`` is refused with 413, unread.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which costs a task and a queue
per request): a declared ``Content-Length`` over the limit is answered at once; a chunked body
is counted as it arrives and the request fails with 413 as soon as it passes the limit.

>>> BodySizeLimit(app=None, max_bytes=1024).max_bytes
1024
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.api.problems import ProblemError, error_response


def too_large(size: int, limit: int) -> ProblemError:
    return ProblemError(413, f"body: {size:,} bytes or more; at most {limit:,} are accepted")


def check_declared(headers: Iterable[tuple[bytes, bytes]], limit: int) -> None:
    """A 413 problem when the request's ``Content-Length`` passes ``limit`` (a missing or
    unreadable one passes: the body is counted as it arrives)."""
    for name, value in headers:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                return
            if declared > limit:
                raise too_large(declared, limit)
            return


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; a 413 problem as soon as it passes ``limit`` bytes."""
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise too_large(received, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp | Any,
        max_bytes: int,
        on_error: Callable[[int], None] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Answered here, before the app's problem handlers: the error counter is told directly.
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        try:
            check_declared(scope["headers"], limit)
        except ProblemError as exc:
            await error_response(exc, scope["path"], self.on_error)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(received, limit)
            return message

        await self.app(scope, counted, send)
