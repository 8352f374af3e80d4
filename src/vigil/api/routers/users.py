"""``DELETE /v1/admin/users/{user_id}``: erase one person (the `admin` role).

The same erasure as ``vigil forget USER`` (:func:`vigil.privacy.erasure.forget`), and more: the
running service's own profiles of the person go too, so the snapshot taken on shutdown does not
write them back. The answer counts what was deleted and pseudonymised; erasing again finds
nothing more to do (a repeated DELETE answers with zeros).

>>> router().routes[0].path
'/v1/admin/users/{user_id}'
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict

from vigil.api.deps import ServiceDep, require
from vigil.api.keys import Role
from vigil.api.problems import ProblemError, problem_responses
from vigil.api.routers.params import ID_RULES


class Erased(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "u-1",
                    "pseudonym": "~3f9a0c2e5b7d1a64",
                    "deleted": {"transactions": 12, "logins": 30, "profiles": 4},
                    "pseudonymised": {"risk_events": 2, "decisions": 2},
                }
            ]
        }
    )

    user_id: str
    pseudonym: str
    deleted: dict[str, int]
    pseudonymised: dict[str, int]


def router() -> APIRouter:
    api = APIRouter(
        prefix="/v1/admin/users",
        tags=["admin"],
        dependencies=[Depends(require(Role.ADMIN))],
        responses=problem_responses(401, 403, 422),
    )

    @api.delete("/{user_id}", summary="Erase a person")
    async def erase_user(
        user_id: Annotated[str, Path(description="The user to erase", **ID_RULES)],
        svc: ServiceDep,
    ) -> Erased:
        """Their events, decisions, profiles and personal data; the audit trail keeps their
        risk events under a pseudonym. Needs `admin`."""
        try:
            report = await svc.forget(user_id)
        except ValueError as exc:  # a blank id
            raise ProblemError(422, str(exc)) from None
        return Erased(**report.as_dict())

    return api
