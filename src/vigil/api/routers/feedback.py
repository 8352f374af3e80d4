"""``POST /v1/feedback``: label an earlier event (by its event id or its decision id).

Idempotent by the feedback's own ``event_id``: sending it again stores nothing new (200 with
``created: false`` instead of 201).

>>> router().routes[0].path
'/v1/feedback'
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from vigil.api.deps import ServiceDep, require
from vigil.api.keys import Role
from vigil.api.problems import ProblemError, problem_responses
from vigil.api.schemas import FeedbackIn, FeedbackOut


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
        try:
            out = await svc.label(body)
        except LookupError as exc:
            raise ProblemError(404, str(exc)) from None
        if not out.created:
            response.status_code = 200
        return out

    return api
