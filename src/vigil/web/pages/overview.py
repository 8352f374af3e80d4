"""The overview: what the engine decides (decisions over time by action), why (top reasons),
what waits (age of the open queue) and how right the alerts were (precision of closed cases per
reason, from analysts' labels), as plots."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vigil.api.deps import ServiceDep
from vigil.storage import cases, figures
from vigil.web import charts
from vigil.web.auth import AnyViewer, PageRefused
from vigil.web.render import page


def router() -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/overview")
    async def overview(
        request: Request, viewer: AnyViewer, svc: ServiceDep, span: str = "day"
    ) -> Response:
        if span not in figures.SPANS:
            raise PageRefused(422, f"span: one of {', '.join(figures.SPANS)}")
        store = svc.store
        await svc.sync()

        def read() -> dict:
            series = figures.decisions_over_time(store, span)
            precision = figures.precision_by_reason(store)
            return {
                "per": series.per,
                "allowed": series.total("allow"),
                "flagged": sum(series.total(a) for a in series.by_action if a != "allow"),
                # Allowed decisions are most of them: plotted, they would flatten the rest.
                "decisions": charts.stacked_columns(
                    series.buckets,
                    {a: v for a, v in series.by_action.items() if a != "allow"},
                    title=f"Flagged decisions per {series.per} by action",
                    y_title=f"decisions per {series.per}",
                ),
                "reasons": charts.hbars(figures.top_reasons(store), title="Top reasons"),
                "age": charts.hbars(
                    figures.queue_age(store), title="Age of open cases", colour="#b54708"
                ),
                "precision": charts.hbars(
                    [(f"{code} ({n})", p * 100) for code, p, n in precision],
                    title="Precision of closed cases per reason",
                    fmt="{:.0f} %",
                    domain=100.0,
                    colour="#2e7d32",
                ),
                "counts": cases.status_counts(store),
            }

        data = await run_in_threadpool(read)
        return page(
            request,
            "overview.html",
            {"viewer": viewer, "span": span, "spans": list(figures.SPANS), **data},
        )

    return web
