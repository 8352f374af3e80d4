"""Routes answered straight from the ASGI call, before FastAPI's routing.

FastAPI's way to an endpoint passes a dozen layers (router, included routers, route matching,
request-response wrappers, exception wrappers, dependency solving), about 120 µs of CPU per
request on this machine, more than deciding on the event. ``DirectRoutes`` answers the
router's POST routes that take a bare ``Request`` (the decision routes: no dependencies, no
parameters) itself: it calls the same endpoint the router documents, and answers any error the
way the app's handlers do (:func:`vigil.api.problems.error_response`). Every other request goes
on to FastAPI unchanged.

>>> from fastapi import APIRouter
>>> api = APIRouter()
>>> @api.post("/ping")
... async def ping(request): ...
>>> sorted(DirectRoutes(app=None, router=api).endpoints)
['/ping']
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vigil.api.problems import error_response

Endpoint = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    def __init__(
        self,
        app: ASGIApp | Any,
        router: APIRouter,
        on_error: Callable[[int], None] | None = None,
    ) -> None:
        self.app = app
        self.endpoints: dict[str, Endpoint] = {
            route.path: route.endpoint
            for route in router.routes
            if isinstance(route, APIRoute) and route.methods == {"POST"}
        }
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = (
            self.endpoints.get(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            response = await endpoint(Request(scope, receive))
        except Exception as exc:  # every error answered as the app's own handlers would
            response = error_response(exc, scope["path"], self.on_error)
        await response(scope, receive, send)
