"""``GET /health`` and ``GET /metrics``: open to every caller, for probes and Prometheus.

>>> sorted(r.path for r in router().routes)
['/health', '/metrics']
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vigil.api.deps import ServiceDep
from vigil.api.metrics import CONTENT_TYPE
from vigil.api.problems import ProblemError, problem_responses
from vigil.api.schemas import Health
from vigil.profiles import MemoryProfileStore


def router() -> APIRouter:
    api = APIRouter(tags=["operations"])

    @api.get(
        "/health", summary="Liveness and database reachability", responses=problem_responses(503)
    )
    async def health(svc: ServiceDep) -> Health:
        def ping() -> None:
            with svc.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(ping)
        except Exception as exc:
            raise ProblemError(503, f"database: unreachable ({type(exc).__name__})") from None
        return Health(
            status="ok",
            database=svc.store.dialect,
            buffered_decisions=svc.recorder.buffered,
            # Counting a shared (Redis) store means scanning it: not on every probe.
            profiles=len(svc.profiles) if isinstance(svc.profiles, MemoryProfileStore) else None,
        )

    @api.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def metrics(svc: ServiceDep) -> Response:
        svc.metrics.buffered.set(svc.recorder.buffered)
        return Response(svc.metrics.render(), media_type=CONTENT_TYPE)

    return api
