"""Entity pages: a card, user, account, terminal or device: its profile, its recent events with
their decisions, and its cases (open first)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from vigil.api.deps import ServiceDep
from vigil.api.routers.params import ID_RULES
from vigil.api.schemas import ProfileView
from vigil.storage import timeline
from vigil.web.auth import AnalystViewer, PageRefused
from vigil.web.render import page

RECENT = 50


def router() -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/entities/{kind}/{entity_id}")
    async def entity_page(
        request: Request,
        kind: str,
        entity_id: Annotated[str, Path(**ID_RULES)],
        viewer: AnalystViewer,
        svc: ServiceDep,
    ) -> Response:
        if kind not in timeline.ENTITY_KINDS:
            kinds = ", ".join(timeline.ENTITY_KINDS)
            raise PageRefused(404, f"There are no {kind} pages, only {kinds}.")
        store = svc.store

        def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            events = timeline.recent(store, kind, entity_id, RECENT)
            if kind in ("card", "user"):
                found = store.list_risk_events(**{f"{kind}_id": entity_id}, limit=200)
            else:  # risk events name cards and users; the others' cases are their flagged events
                flagged = {e["event_id"] for e in events if e["action"] not in (None, "allow")}
                found = [
                    r
                    for user in {e["user_id"] for e in events if e["user_id"]}
                    for r in store.list_risk_events(user_id=user, limit=200)
                    if r["event_id"] in flagged
                ]
            found.sort(key=lambda r: (r["status"] == "closed", -r["event_time"].timestamp()))
            return events, found

        await svc.sync()
        events, found = await run_in_threadpool(read)
        profile = svc.profile(kind, entity_id)
        if profile is None and not events:
            raise PageRefused(404, f"No {kind} {entity_id!r} has been seen.")
        return page(
            request,
            "entity.html",
            {
                "viewer": viewer,
                "kind": kind,
                "entity_id": entity_id,
                "p": None if profile is None else ProfileView.of(kind, entity_id, profile),
                "events": events,
                "cases": found,
            },
        )

    return web
