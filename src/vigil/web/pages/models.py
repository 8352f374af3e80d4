"""The models page: every version in the registry, its test metrics, which one is promoted and
which one this server runs, and each version's report (promoting stays an admin action:
``vigil models promote`` or the admin API).

The report is the one ``vigil train`` writes (:func:`vigil.models.report.write_model_report`),
built from the registry on request. It inlines plotly.js, so it is served under a policy of its
own: inline scripts and styles, and nothing from anywhere (no fetch, no image, no form).
"""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response

from vigil.api.deps import ServiceDep
from vigil.models.registry import Registry
from vigil.models.report import write_model_report
from vigil.models.scorer import registry_dir
from vigil.web.auth import AnyViewer, PageRefused
from vigil.web.render import HEADERS, page

REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
Name = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
Version = Annotated[str, Path(pattern=r"^v\d{4,}$")]

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
                "metrics": [m for m in METRICS if any(m in r["metrics"] for r in rows)],
                "where": str(registry_dir(svc.settings)),
                "serving": serving,
            },
        )

    @web.get("/models/{name}/{version}/report")
    async def report(
        request: Request, name: Name, version: Version, viewer: AnyViewer, svc: ServiceDep
    ) -> Response:
        registry = Registry(registry_dir(svc.settings))

        def build() -> str | None:
            try:
                manifest = registry.manifest(name, version)
            except LookupError:
                return None
            scores = registry.test_scores(name, version)
            if scores is None:
                return ""
            with tempfile.TemporaryDirectory() as folder:
                out = write_model_report(manifest, scores, FilePath(folder) / "report.html")
                return out.read_text(encoding="utf-8")

        html = await run_in_threadpool(build)
        if html is None:
            raise PageRefused(404, f"There is no model {name} {version} in the registry.")
        if not html:
            raise PageRefused(404, f"Model {name} {version} kept no test scores to report on.")
        return HTMLResponse(html, headers={**HEADERS, "Content-Security-Policy": REPORT_CSP})

    return web
