"""``POST /v1/feedback``: label an earlier event (by its event id or its decision id).

Idempotent by the feedback's own ``event_id``: sending it again stores nothing new (200 with
``created: false`` instead of 201).

>>> router().routes[0].path
'/v1/feedback'
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from vigil.api.deps import ServiceDep, require
from vigil.api.keys import Role
from vigil.api.problems import ProblemError, problem_responses
from vigil.api.schemas import FeedbackIn, FeedbackOut
from vigil.domain import Decision, Feedback


def router() -> APIRouter:
    api = APIRouter(
        prefix="/v1",
        tags=["analysis"],
        dependencies=[Depends(require(Role.ANALYST))],
        responses=problem_responses(401, 403, 404, 413, 422),
    )

    @api.post(
        "/feedback",
        status_code=201,
        summary="Label an earlier event",
        responses={200: {"model": FeedbackOut, "description": "Stored before; nothing changed"}},
    )
    async def post_feedback(body: FeedbackIn, response: Response, svc: ServiceDep) -> FeedbackOut:
        """Confirmed fraud, legitimate, dispute, StandIn outcome. Needs `analyst`."""
        await svc.sync()
        store = svc.store

        def find() -> Decision | None:
            if body.decision_id is not None:
                return store.get_decision_by_id(body.decision_id)
            assert body.target_event_id is not None
            return store.get_decision(body.target_event_id)

        decision = await run_in_threadpool(find)
        if decision is None:
            named = "decision_id" if body.decision_id is not None else "target_event_id"
            target = body.decision_id or body.target_event_id
            raise ProblemError(404, f"{named}: no decision on {target!r}")
        item = Feedback(
            event_id=body.event_id or f"fb-{uuid.uuid4().hex}",
            target_event_id=decision.event_id,
            label=body.label,
            timestamp=body.timestamp or datetime.now(UTC),
            source=body.source,
            pattern=body.pattern,
            note=body.note,
        )
        created = await run_in_threadpool(store.insert_feedback, [item]) == 1
        if created:
            svc.learn(item)  # back on the loop thread, the engine's only thread
        else:
            response.status_code = 200
        return FeedbackOut(
            event_id=item.event_id,
            target_event_id=item.target_event_id,
            decision_id=decision.decision_id,
            label=item.label,
            created=created,
        )

    return api
