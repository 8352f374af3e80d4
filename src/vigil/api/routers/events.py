"""``POST /v1/transactions`` and ``POST /v1/logins``: one event, or a batch, in; decisions out.

The body is parsed straight from bytes by pydantic-core (one pass, no intermediate dicts) and
the answer written as bytes: this is the hot path. A JSON object is one event and gets one
decision; a JSON array is a batch and gets an array of decisions in the same order. A batch is
validated whole before any of it is decided: one bad event refuses the batch (422 naming
``[i].field``), so nothing is half-decided.

>>> parse_events(b'{"event_id": "l-1", "user_id": "u-1", "timestamp": "2022-01-01T09:00:00Z"}',
...              LOGINS, 10)[1]
False
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import State
from starlette.responses import Response

from vigil.api.deps import API_KEY_HEADER, API_KEY_SCHEME, check_key
from vigil.api.guard import reject_duplicate_keys
from vigil.api.keys import Role
from vigil.api.problems import (
    FieldError,
    ProblemError,
    from_validation_error,
    invalid,
    problem_responses,
)
from vigil.api.service import DecisionService, NotCommitted
from vigil.domain import Decision, Login, Transaction
from vigil.domain.decisions import DECISION_EXAMPLE
from vigil.engine import EventConflict, EventInProgress

_DECISION: TypeAdapter[Decision] = TypeAdapter(Decision)
_DECISIONS: TypeAdapter[list[Decision]] = TypeAdapter(list[Decision])


@dataclass(frozen=True)
class EventKind:
    """How one route reads its events."""

    name: str
    model: type[Transaction] | type[Login]
    one: TypeAdapter[Any]
    many: TypeAdapter[Any]
    example: dict[str, Any]


TRANSACTION_EXAMPLE = {
    "event_id": "tx-20240501-000123",
    "transaction_id": "t-000123",
    "timestamp": "2024-05-01T10:15:00Z",
    "type": "withdrawal",
    "channel": "atm",
    "amount": "25000.00",
    "currency": "NGN",
    "card_id": "c-0042",
    "user_id": "u-0042",
    "terminal_id": "ATM-LAG-07",
    "latitude": 6.4541,
    "longitude": 3.3947,
}
LOGIN_EXAMPLE = {
    "event_id": "login-20240501-000777",
    "user_id": "u-0042",
    "timestamp": "2024-05-01T10:14:00Z",
    "success": True,
    "ip": "102.89.4.17",
    "device_id": "dev-8f3a",
    "country": "NG",
    "latitude": 6.45,
    "longitude": 3.39,
}
TRANSACTIONS = EventKind(
    "transaction",
    Transaction,
    TypeAdapter(Transaction),
    TypeAdapter(list[Transaction]),
    TRANSACTION_EXAMPLE,
)
LOGINS = EventKind("login", Login, TypeAdapter(Login), TypeAdapter(list[Login]), LOGIN_EXAMPLE)


def parse_events(body: bytes, kind: EventKind, max_batch: int) -> tuple[list[Any], bool]:
    """The validated events of a request body, and whether it was a batch."""
    batch = body.lstrip()[:1] == b"["
    reject_duplicate_keys(body)
    try:
        events = kind.many.validate_json(body) if batch else [kind.one.validate_json(body)]
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    if batch and not events:
        raise invalid([FieldError(field="body", message="an empty batch", type="too_short")])
    if len(events) > max_batch:
        raise ProblemError(413, f"body: a batch of {len(events):,} events; at most {max_batch:,}")
    return events, batch


def _openapi(kind: EventKind, max_batch: int) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{kind.model.__name__}"}
    second = {**kind.example, "event_id": kind.example["event_id"] + "-2"}
    body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        ref,
                        {"type": "array", "items": ref, "minItems": 1, "maxItems": max_batch},
                    ]
                },
                "examples": {
                    "one": {"summary": f"one {kind.name}", "value": kind.example},
                    "batch": {"summary": "a batch", "value": [kind.example, second]},
                },
            }
        },
    }
    decision = {"$ref": "#/components/schemas/Decision"}
    answer = {
        "description": "The decision (an array of decisions for a batch, in order), sent once "
        "it is committed. A repeated event id gets the decision first taken on it, unchanged, "
        "if the event is the same (else 409).",
        "content": {
            "application/json": {
                "schema": {"oneOf": [decision, {"type": "array", "items": decision}]},
                "example": {
                    **DECISION_EXAMPLE,
                    "event_id": kind.example["event_id"],
                    "event_kind": kind.name,
                    "event_time": kind.example["timestamp"],
                    "card_id": kind.example.get("card_id"),
                },
            }
        },
    }
    return {
        "requestBody": body,
        "responses": {"200": answer},
        "security": [{API_KEY_SCHEME: [Role.INGEST.value]}],
    }


@dataclass(frozen=True)
class DecisionRoute:
    """One decision route's work, from API key and body bytes to the answer's bytes.

    The FastAPI route (:func:`router`, which documents it) and the front door that answers it
    before FastAPI's layers (:class:`vigil.api.direct.DirectRoutes`) both call :meth:`answer`.
    """

    path: str
    kind: EventKind
    summary: str
    max_batch: int

    async def answer(
        self,
        state: State,
        key: str | None,
        body: Callable[[], Awaitable[bytes]],
        client: str | None = None,
    ) -> bytes:
        """The decisions on the events of the body (read once the key is checked) as JSON;
        a :class:`ProblemError` otherwise. ``client``: the caller's address, whose failed key
        checks are limited."""
        started = time.perf_counter()
        await check_key(state.keys, key, Role.INGEST, client)
        svc: DecisionService = state.service
        events, batch = parse_events(await body(), self.kind, self.max_batch)
        try:
            decisions = svc.decide(events)
        except EventInProgress as exc:  # a repeat sent while another process decides
            raise ProblemError(409, f"{exc}; send it again", headers={"Retry-After": "1"}) from None
        except EventConflict as exc:
            errors = [FieldError(field="event_id", message=str(exc), type="conflict")]
            raise ProblemError(409, str(exc), errors=errors) from None
        try:  # acknowledged means committed
            await svc.commit([d.event_id for d in decisions])
        except NotCommitted as exc:
            raise ProblemError(503, f"{exc}; send it again", headers={"Retry-After": "1"}) from None
        content = _DECISIONS.dump_json(decisions) if batch else _DECISION.dump_json(decisions[0])
        svc.metrics.answered(self.path, time.perf_counter() - started)
        return content


def routes(max_batch: int) -> list[DecisionRoute]:
    return [
        DecisionRoute("/v1/transactions", TRANSACTIONS, "Decide on transactions", max_batch),
        DecisionRoute("/v1/logins", LOGINS, "Decide on logins", max_batch),
    ]


def router(decision_routes: list[DecisionRoute]) -> APIRouter:
    # No FastAPI dependencies on this hot path: solving them costs more than deciding. The key
    # is checked by the same function the dependencies use, and documented by hand below.
    api = APIRouter(tags=["decisions"], responses=problem_responses(401, 403, 409, 413, 422, 503))
    for route in decision_routes:
        kind = route.kind
        api.add_api_route(
            route.path,
            _endpoint(route),
            methods=["POST"],
            summary=route.summary,
            description=f"Decide on one {kind.name} (a JSON object) or a batch of up to "
            f"{route.max_batch:,} (a JSON array). Needs the `ingest` role.",
            openapi_extra=_openapi(kind, route.max_batch),
            response_class=Response,
        )
    return api


def _endpoint(route: DecisionRoute) -> Callable[[Request], Awaitable[Response]]:
    async def decide(request: Request) -> Response:
        key = request.headers.get(API_KEY_HEADER)
        client = request.client.host if request.client is not None else None
        content = await route.answer(request.app.state, key, request.body, client)
        return Response(content, media_type="application/json")

    decide.__name__ = f"decide_{route.kind.name}s"
    return decide
