"""``GET /v1/risk-events``: the flagged decisions, newest first, filtered and paginated.

>>> router().routes[0].path
'/v1/risk-events'
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from vigil.api.deps import require, service
from vigil.api.keys import Role
from vigil.api.problems import problem_responses
from vigil.api.routers.params import ID_RULES
from vigil.api.schemas import RiskEvent, RiskEventPage
from vigil.api.service import DecisionService
from vigil.domain import Action
from vigil.domain.types import UtcDatetime

MAX_PAGE = 1000
MAX_OFFSET = 10_000_000


def router() -> APIRouter:
    api = APIRouter(
        prefix="/v1",
        tags=["analysis"],
        dependencies=[Depends(require(Role.ANALYST))],
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

    return api
