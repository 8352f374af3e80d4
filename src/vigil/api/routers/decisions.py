"""``GET /v1/decisions/{id}``: one decision, by the decision id vigil returned or the event id.

Buffered decisions are committed first, so a decision answered a moment ago is found.

>>> router().routes[0].path
'/v1/decisions/{id}'
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from vigil.api.deps import ServiceDep, require
from vigil.api.keys import Role
from vigil.api.problems import ProblemError, problem_responses
from vigil.api.routers.params import ID_RULES
from vigil.domain import Decision


def router() -> APIRouter:
    api = APIRouter(
        prefix="/v1",
        tags=["analysis"],
        dependencies=[Depends(require(Role.ANALYST))],
        responses=problem_responses(401, 403, 404, 422),
    )

    @api.get("/decisions/{id}", summary="One decision")
    async def get_decision(
        id: Annotated[str, Path(description="Decision id, or the event's id", **ID_RULES)],
        svc: ServiceDep,
    ) -> Decision:
        """A decision by its decision id, or by the id of the event it decided. Needs `analyst`."""
        await svc.sync()

        def find() -> Decision | None:
            return svc.store.get_decision_by_id(id) or svc.store.get_decision(id)

        found = await run_in_threadpool(find)
        if found is None:
            raise ProblemError(404, f"id: no decision or event {id!r}")
        return found

    return api
