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

from vigil.api.problems import ProblemError, problem_response


def too_large(size: int, limit: int) -> ProblemError:
    return ProblemError(413, f"body: {size:,} bytes or more; at most {limit:,} are accepted")


def declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The request's ``Content-Length`` (0 when absent or unreadable)."""
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


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
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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
        declared = declared_length(scope["headers"])
        if declared > limit:
            problem = too_large(declared, limit)
            response = problem_response(413, problem.detail, instance=scope["path"])
            if self.on_error is not None:
                self.on_error(413)
            await response(scope, receive, send)
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
