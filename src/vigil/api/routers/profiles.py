"""``GET /v1/profiles/{entity}/{id}``: how one card, user, account, terminal or device behaves.

>>> router().routes[0].path
'/v1/profiles/{entity}/{id}'
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from vigil.api.deps import ServiceDep, require
from vigil.api.keys import Role
from vigil.api.problems import ProblemError, problem_responses
from vigil.api.routers.params import ID_RULES
from vigil.api.schemas import ProfileView
from vigil.profiles.store import ENTITY_KINDS

Entity = StrEnum("Entity", {kind.upper(): kind for kind in ENTITY_KINDS})  # type: ignore[misc]


def router() -> APIRouter:
    api = APIRouter(
        prefix="/v1",
        tags=["analysis"],
        dependencies=[Depends(require(Role.ANALYST))],
        responses=problem_responses(401, 403, 404, 422),
    )

    @api.get("/profiles/{entity}/{id}", summary="One entity's profile")
    async def get_profile(
        entity: Entity,
        id: Annotated[str, Path(**ID_RULES)],
        svc: ServiceDep,
    ) -> ProfileView:
        """The live profile (read on the engine's thread, so it is never seen mid-update).
        Needs `analyst`."""
        profile = svc.profile(entity.value, id)
        if profile is None:
            raise ProblemError(404, f"id: no {entity.value} {id!r} has been seen")
        return ProfileView.of(entity.value, id, profile)

    return api
