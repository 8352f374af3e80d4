"""The review queue: risk events as cases (same card or user close in time grouped as one),
filtered, sorted and paged, with counts per status; an analyst takes a case or closes several
at once with a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from vigil.api import casework
from vigil.api.deps import ServiceDep
from vigil.api.schemas import RiskEventPatch
from vigil.domain import Action, FeedbackLabel
from vigil.storage import cases
from vigil.web.auth import AnalystViewer, PageRefused, first, next_path, posted
from vigil.web.forms import instant
from vigil.web.render import page

PAGE_SIZE = 50
# Alerts of one card or user this close in time are one case.
GROUP_WITHIN = timedelta(hours=1)
CLOSING_LABELS = (FeedbackLabel.FRAUD, FeedbackLabel.LEGITIMATE, FeedbackLabel.DISPUTE)
# "active" (the default) is what still needs work: open, and taken but not closed.
STATUS_CHOICES = ("active", "open", "in_review", "closed", "all")
_STATUSES = {
    "active": ("open", "in_review"),
    "open": "open",
    "in_review": "in_review",
    "closed": "closed",
    "all": None,
}


@dataclass(frozen=True, slots=True)
class Filters:
    """The queue's filters as the form sends them ('' is no filter)."""

    status: str = "active"
    action: str = ""
    reason: str = ""
    card: str = ""
    user: str = ""
    assignee: str = ""
    since: str = ""
    until: str = ""
    sort: str = "newest"
    offset: int = 0

    def query(self, **changes: Any) -> str:
        """This view's query string with ``changes``, blank filters left out.

        >>> Filters(card="c-1").query(offset=50)
        'status=active&card=c-1&sort=newest&offset=50'
        """
        values = {**{f: getattr(self, f) for f in self.__slots__}, **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", 0, None)})


def _rows(store: Any, f: Filters, viewer_name: str) -> list[dict[str, Any]]:
    if f.action and f.action not in {a.value for a in Action}:
        raise PageRefused(422, f"action: {f.action!r} is not an action")
    if f.status not in STATUS_CHOICES:
        raise PageRefused(422, f"status: {f.status!r} is not one of {', '.join(STATUS_CHOICES)}")
    return store.list_risk_events(
        status=_STATUSES[f.status],
        action=f.action or None,
        reason=[c.strip() for c in f.reason.replace("+", ",").split(",") if c.strip()] or None,
        card_id=f.card or None,
        user_id=f.user or None,
        assignee=(viewer_name if f.assignee == "me" else f.assignee) or None,
        since=instant(f.since, "since"),
        until=instant(f.until, "until"),
        by_score=f.sort == "score",
        limit=PAGE_SIZE + 1,
        offset=f.offset,
    )


def router() -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/queue")
    async def queue(
        request: Request,
        viewer: AnalystViewer,
        svc: ServiceDep,
        status: str = "active",
        action: str = "",
        reason: str = "",
        card: str = "",
        user: str = "",
        assignee: str = "",
        since: str = "",
        until: str = "",
        sort: str = "newest",
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        closed: Annotated[int | None, Query(ge=0)] = None,
    ) -> Response:
        f = Filters(
            status,
            action,
            reason,
            card,
            user,
            assignee,
            since,
            until,
            "score" if sort == "score" else "newest",
            offset,
        )
        store = svc.store

        def read() -> tuple[list[dict[str, Any]], dict[str, int]]:
            return _rows(store, f, viewer.name), cases.status_counts(store)

        rows, counts = await run_in_threadpool(read)
        more = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE]
        return page(
            request,
            "queue.html",
            {
                "viewer": viewer,
                "f": f,
                "cases": cases.group(rows, GROUP_WITHIN),
                "shown": len(rows),
                "totals": {
                    **counts,
                    "active": counts["open"] + counts["in_review"],
                    "all": sum(counts.values()),
                },
                "statuses": STATUS_CHOICES,
                "actions": [a.value for a in Action if a is not Action.ALLOW],
                "labels": [label.value for label in CLOSING_LABELS],
                "previous": f.query(offset=max(0, f.offset - PAGE_SIZE)) if f.offset else None,
                "next": f.query(offset=f.offset + PAGE_SIZE) if more else None,
                "here": f"/queue?{f.query()}",
                "closed": closed,
                "page_size": PAGE_SIZE,
            },
        )

    @web.post("/queue/close")
    async def close_many(request: Request, viewer: AnalystViewer, svc: ServiceDep) -> Response:
        fields = await posted(request, viewer)
        label = first(fields, "label")
        if label not in {v.value for v in CLOSING_LABELS}:
            raise PageRefused(422, "Choose a label (fraud, legitimate or dispute) to close with.")
        note = first(fields, "note") or None
        ids = sorted(
            {int(i) for v in fields.get("ids", []) for i in v.split(",") if i.strip().isdigit()}
        )
        patch = RiskEventPatch(label=FeedbackLabel(label), note=note)
        done = 0
        for risk_event_id in ids:
            try:
                await casework.act(svc, risk_event_id, patch, viewer.principal)
            except LookupError:
                continue
            done += 1
        back = next_path(first(fields, "back"))
        joiner = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{joiner}closed={done}", status_code=303)

    return web
