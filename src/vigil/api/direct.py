"""The decision routes, answered at the application's front door.

Between the server and an endpoint, FastAPI passes every request through its own layers (its
telemetry check, error, telemetry and body-limit middlewares, the app's size limit, routing,
request and response objects): tens of microseconds of CPU on this machine, a large share of
what a decision costs. :class:`DirectRoutes` answers the decision routes before any of them,
from the raw ASGI messages: the size limit, the key check, the route's own work
(:class:`vigil.api.routers.events.DecisionRoute`, which the documented FastAPI route calls too)
and the answer, two messages. Errors are answered as the app's handlers answer them
(:func:`vigil.api.problems.error_response`). Every other request goes on to FastAPI unchanged.
Each answer, errors included, carries the request's id (:mod:`vigil.api.request_id`: the
client's ``X-Request-ID`` or one made here), bound for the log lines written meanwhile; it is
read in the same pass over the headers as the key.

>>> direct = DirectRoutes([], max_bytes=1024)
>>> direct.route({"type": "http", "method": "POST", "path": "/v1/transactions"}) is None
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from vigil.api.deps import API_KEY_HEADER
from vigil.api.limits import check_declared, read_body
from vigil.api.problems import error_response
from vigil.api.request_id import HEADER as _ID_HEADER
from vigil.api.request_id import accept, bound, unbind
from vigil.api.routers.events import DecisionRoute

_KEY_HEADER = API_KEY_HEADER.lower().encode("latin-1")
_JSON = (b"content-type", b"application/json")


class DirectRoutes:
    def __init__(
        self,
        routes: Sequence[DecisionRoute],
        *,
        max_bytes: int,
        on_error: Callable[[int], None] | None = None,
    ) -> None:
        self.routes = {route.path: route for route in routes}
        self.max_bytes = max_bytes
        self.on_error = on_error

    def route(self, scope: Scope) -> DecisionRoute | None:
        """The decision route this request is for, if any."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        return self.routes.get(scope["path"])

    async def answer(
        self, route: DecisionRoute, state: State, scope: Scope, receive: Receive, send: Send
    ) -> None:
        headers = scope["headers"]
        key: str | None = None
        given: bytes | None = None
        for name, value in headers:
            if name == _KEY_HEADER:
                if key is None:
                    key = value.decode("latin-1")
            elif name == _ID_HEADER and given is None:
                given = value
        rid = accept(given)
        tokens = bound(rid)
        try:
            try:
                check_declared(headers, self.max_bytes)
                client = scope.get("client")
                content = await route.answer(
                    state,
                    key,
                    lambda: read_body(receive, self.max_bytes),
                    client[0] if client else None,
                )
            except Exception as exc:  # every error answered as the app's own handlers would
                response = error_response(exc, scope["path"], self.on_error)
                response.raw_headers.append((_ID_HEADER, rid))
                await response(scope, receive, send)
                return
            length = (b"content-length", b"%d" % len(content))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [_JSON, length, (_ID_HEADER, rid)],
                }
            )
            await send({"type": "http.response.body", "body": content})
        finally:
            unbind(tokens)
