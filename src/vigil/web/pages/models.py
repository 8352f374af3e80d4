"""The models page: every version in the registry, its test metrics, which one is promoted and
which one this server runs (promoting stays an admin action: ``vigil models promote`` or the
admin API)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vigil.api.deps import ServiceDep
from vigil.models.registry import Registry
from vigil.models.scorer import registry_dir
from vigil.web.auth import AnyViewer
from vigil.web.render import page

# The test metrics shown, in this order, when a manifest has them.
METRICS = ("roc_auc", "average_precision", "precision", "recall", "brier", "log_loss")


def router() -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/models")
    async def models(request: Request, viewer: AnyViewer, svc: ServiceDep) -> Response:
        registry = Registry(registry_dir(svc.settings))
        manifests = await run_in_threadpool(registry.list)
        serving = svc.engine.model_versions
        rows = [
            {
                "name": m["name"],
                "version": m["version"],
                "kind": m.get("kind", ""),
                "status": m.get("status", ""),
                "created_at": str(m.get("created_at", ""))[:16].replace("T", " "),
                "metrics": {
                    k: v
                    for k, v in (m.get("metrics", {}).get("test") or {}).items()
                    if k in METRICS and isinstance(v, int | float)
                },
                "features": len(m.get("features", []) or []),
                "in_service": serving.get(m["name"]) == m["version"],
            }
            for m in manifests
        ]
        return page(
            request,
            "models.html",
            {
                "viewer": viewer,
                "rows": rows,
                "metrics": METRICS,
                "where": str(registry_dir(svc.settings)),
                "serving": serving,
            },
        )

    return web
