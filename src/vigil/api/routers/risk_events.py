"""Risk events, the cases analysts work: ``GET /v1/risk-events`` (newest first, filtered and
paginated), ``GET /v1/risk-events/{id}`` with its case journal, and ``PATCH
/v1/risk-events/{id}`` (status, assignee, label, note; :mod:`vigil.api.casework`).

>>> [(sorted(r.methods), r.path) for r in router().routes]  # doctest: +NORMALIZE_WHITESPACE
[(['GET'], '/v1/risk-events'), (['GET'], '/v1/risk-events/{risk_event_id}'),
 (['PATCH'], '/v1/risk-events/{risk_event_id}')]
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from vigil.api import casework
from vigil.api.deps import ServiceDep, require, service
from vigil.api.keys import Principal, Role
from vigil.api.problems import ProblemError, problem_responses
from vigil.api.routers.params import ID_RULES
from vigil.api.schemas import (
    CaseJournalEntry,
    RiskEvent,
    RiskEventDetail,
    RiskEventPage,
    RiskEventPatch,
)
from vigil.api.service import DecisionService
from vigil.domain import Action
from vigil.domain.types import UtcDatetime
from vigil.storage import cases

MAX_PAGE = 1000
MAX_OFFSET = 10_000_000
RiskEventId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The risk event's id")]
# One dependency for the router and the route that needs the principal: checked once a request.
_analyst = require(Role.ANALYST)
Analyst = Annotated[Principal, Depends(_analyst)]


def router() -> APIRouter:
    api = APIRouter(
        prefix="/v1",
        tags=["analysis"],
        dependencies=[Depends(_analyst)],
        responses=problem_responses(401, 403, 422),
    )

    @api.get("/risk-events", summary="Risk events")
    async def list_risk_events(
        svc: Annotated[DecisionService, Depends(service)],
        user_id: Annotated[str | None, Query(**ID_RULES)] = None,
        card_id: Annotated[str | None, Query(**ID_RULES)] = None,
        action: Action | None = None,
        reason: Annotated[
            str | None, Query(description="One reason code, e.g. impossible_travel", **ID_RULES)
        ] = None,
        since: Annotated[
            UtcDatetime | None, Query(description="Event time from (inclusive, with timezone)")
        ] = None,
        until: Annotated[
            UtcDatetime | None, Query(description="Event time until (exclusive, with timezone)")
        ] = None,
        status: Annotated[
            cases.Status | None, Query(description="open, in_review or closed")
        ] = None,
        assignee: Annotated[
            str | None, Query(description="The analyst it is assigned to", **ID_RULES)
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> RiskEventPage:
        """Flagged decisions, newest event first. Needs `analyst`."""
        await svc.sync()
        rows = await run_in_threadpool(
            lambda: svc.store.list_risk_events(
                user_id=user_id,
                card_id=card_id,
                action=action,
                reason=reason,
                since=since,
                until=until,
                status=None if status is None else status.value,
                assignee=assignee,
                limit=limit + 1,
                offset=offset,
            )
        )
        more = len(rows) > limit
        return RiskEventPage(
            items=[RiskEvent.model_validate(r) for r in rows[:limit]],
            limit=limit,
            offset=offset,
            next_offset=offset + limit if more else None,
        )

    @api.get(
        "/risk-events/{risk_event_id}",
        summary="One risk event and its case journal",
        responses=problem_responses(404),
    )
    async def get_risk_event(risk_event_id: RiskEventId, svc: ServiceDep) -> RiskEventDetail:
        """The risk event with every analyst action on it, oldest first. Needs `analyst`."""
        await svc.sync()
        row, entries = await run_in_threadpool(
            lambda: (cases.get(svc.store, risk_event_id), cases.journal(svc.store, risk_event_id))
        )
        if row is None:
            raise ProblemError(404, f"risk_event_id: no risk event {risk_event_id}")
        return RiskEventDetail.model_validate(
            {**row, "journal": [CaseJournalEntry.model_validate(e) for e in entries]}
        )

    @api.patch(
        "/risk-events/{risk_event_id}",
        summary="Work a case: status, assignee, label, note",
        responses=problem_responses(404, 413),
    )
    async def patch_risk_event(
        risk_event_id: RiskEventId,
        body: RiskEventPatch,
        svc: ServiceDep,
        principal: Analyst,
    ) -> RiskEventDetail:
        """Set the status or assignee, add a note, or label the event (fraud, legitimate,
        dispute, ...): a label is stored as feedback that teaches the engine, as `POST
        /v1/feedback` does, and closes the case. Each action is appended to the case journal
        with the key that made it. Needs `analyst`."""
        try:
            await casework.act(svc, risk_event_id, body, principal)
        except LookupError as exc:
            raise ProblemError(404, str(exc)) from None
        return await get_risk_event(risk_event_id, svc)

    return api
