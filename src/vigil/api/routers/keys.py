"""``/v1/admin/keys``: create, list and revoke API keys (the `admin` role).

>>> sorted(r.path for r in router().routes)
['/v1/admin/keys', '/v1/admin/keys', '/v1/admin/keys/{key_id}']
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from vigil.api.deps import require
from vigil.api.keys import ApiKey, KeyRing, Role
from vigil.api.problems import ProblemError, problem_responses
from vigil.api.schemas import KeyCreate, KeyCreated


def ring(request: Request) -> KeyRing:
    return request.app.state.keys


Ring = Annotated[KeyRing, Depends(ring)]


def router() -> APIRouter:
    api = APIRouter(
        prefix="/v1/admin/keys",
        tags=["admin"],
        dependencies=[Depends(require(Role.ADMIN))],
        responses=problem_responses(401, 403, 422),
    )

    @api.post("", status_code=201, summary="Create a key")
    async def create_key(body: KeyCreate, keys: Ring) -> KeyCreated:
        """The key is in this answer only: it is stored as an argon2 hash."""
        key, info = await run_in_threadpool(keys.create, body.name, body.roles)
        return KeyCreated(
            key=key,
            key_id=info.key_id,
            name=info.name,
            roles=info.roles,
            created_at=info.created_at,
        )

    @api.get("", summary="List keys")
    async def list_keys(keys: Ring) -> list[ApiKey]:
        """Every key, revoked ones included; never a secret."""
        return await run_in_threadpool(keys.list)

    @api.delete(
        "/{key_id}", status_code=204, summary="Revoke a key", responses=problem_responses(404)
    )
    async def revoke_key(
        key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], keys: Ring
    ) -> Response:
        """Takes effect at once on this server; on others within `api.key_cache_seconds`."""
        if not await run_in_threadpool(keys.revoke, key_id):
            raise ProblemError(404, f"key_id: no active key {key_id!r}")
        return Response(status_code=204)

    return api
