"""A case: the flagged event and its decision (score, action, each reason with its detail and
the evidence events it names), the card's and user's timeline around it with each decision, a
map of the places with travel legs and speeds, the entities' profiles beside the event, the
models that took part, the case journal; and the analyst's actions: take, note, label.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from vigil.api import casework
from vigil.api.deps import ServiceDep
from vigil.api.schemas import ProfileView, RiskEventPatch
from vigil.api.service import DecisionService
from vigil.domain import Decision, FeedbackLabel
from vigil.models.scorer import CODE as MODEL_REASON
from vigil.storage import cases, timeline
from vigil.web import geomap
from vigil.web.auth import AnalystViewer, PageRefused, Viewer, first, next_path, posted
from vigil.web.pages.queue import CLOSING_LABELS
from vigil.web.render import page

CaseId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _place(event: dict[str, Any]) -> geomap.Place | None:
    if event["latitude"] is None or event["longitude"] is None:
        return None
    where = event["terminal_id"] or event["city"] or f"{event['kind']} {event['country'] or ''}"
    return geomap.Place(
        event_id=event["event_id"],
        at=event["timestamp"],
        latitude=event["latitude"],
        longitude=event["longitude"],
        label=str(where),
        flagged=event["action"] not in (None, "allow"),
    )


def contributions(decision: Decision | None) -> list[tuple[str, list[str]]]:
    """The model's top contributions, as its reason names them (``feature=value (+share)``).

    >>> from vigil.domain import Reason
    >>> d = Decision(decision_id="d", event_id="e", event_kind="transaction", score=0.9,
    ...     action="block", reasons=[Reason(code=MODEL_REASON, score=0.9,
    ...     detail="model transaction v0002: p=0.900; amount_z=4.1 (+1.2), hour=3 (+0.4)")])
    >>> contributions(d)
    [('model transaction v0002: p=0.900', ['amount_z=4.1 (+1.2)', 'hour=3 (+0.4)'])]
    """
    out = []
    for reason in decision.reasons if decision is not None else []:
        if reason.code == MODEL_REASON and "; " in reason.detail:
            head, top = reason.detail.split("; ", 1)
            out.append((head, [item for item in top.split(", ") if item]))
    return out


def _profile(svc: DecisionService, kind: str, key: str | None) -> ProfileView | None:
    if key is None:
        return None
    found = svc.profile(kind, key)
    return None if found is None else ProfileView.of(kind, key, found)


def _read(svc: DecisionService, risk_event_id: int) -> dict[str, Any]:
    store = svc.store
    row = cases.get(store, risk_event_id)
    if row is None:
        raise PageRefused(404, f"There is no case #{risk_event_id}.")
    decision = store.get_decision(row["event_id"])
    at: datetime = row["event_time"]
    around = timeline.around(store, at, card_id=row["card_id"], user_id=row["user_id"])
    evidence_ids = sorted({e for r in (decision.reasons if decision else []) for e in r.evidence})
    known = {e["event_id"]: e for e in around}
    missing = [e for e in [row["event_id"], *evidence_ids] if e not in known]
    known.update(timeline.by_ids(store, missing))
    places = [p for p in map(_place, around) if p is not None]
    return {
        "case": row,
        "decision": decision,
        "event": known.get(row["event_id"]),
        "evidence": {e: known.get(e) for e in evidence_ids},
        "timeline": around,
        "map": geomap.draw(
            places, focus=row["event_id"], travel=svc.settings.detectors.impossible_travel
        ),
        "journal": cases.journal(store, risk_event_id),
        "contributions": contributions(decision),
        "related": [
            r
            for r in store.list_risk_events(
                card_id=row["card_id"], user_id=None if row["card_id"] else row["user_id"], limit=20
            )
            if r["risk_event_id"] != risk_event_id
        ]
        if (row["card_id"] or row["user_id"])
        else [],
    }


def router() -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/cases/{risk_event_id}")
    async def case_page(
        request: Request, risk_event_id: CaseId, viewer: AnalystViewer, svc: ServiceDep
    ) -> Response:
        await svc.sync()
        data = await run_in_threadpool(_read, svc, risk_event_id)
        row = data["case"]
        data["profiles"] = [
            p
            for p in (
                _profile(svc, "card", row["card_id"]),
                _profile(svc, "user", row["user_id"]),
            )
            if p is not None
        ]
        return page(
            request,
            "case.html",
            {
                "viewer": viewer,
                "labels": [label.value for label in CLOSING_LABELS],
                "speed": geomap.speed,
                **data,
            },
        )

    async def _act(
        viewer: Viewer, svc: DecisionService, risk_event_id: int, patch: RiskEventPatch
    ) -> None:
        try:
            await casework.act(svc, risk_event_id, patch, viewer.principal)
        except LookupError:
            raise PageRefused(404, f"There is no case #{risk_event_id}.") from None

    @web.post("/cases/{risk_event_id}/take")
    async def take(
        request: Request, risk_event_id: CaseId, viewer: AnalystViewer, svc: ServiceDep
    ) -> Response:
        fields = await posted(request, viewer)
        patch = RiskEventPatch(status=cases.Status.IN_REVIEW, assignee=viewer.name)
        await _act(viewer, svc, risk_event_id, patch)
        back = first(fields, "back")
        return RedirectResponse(
            next_path(back) if back else f"/cases/{risk_event_id}", status_code=303
        )

    @web.post("/cases/{risk_event_id}/assign")
    async def assign(
        request: Request, risk_event_id: CaseId, viewer: AnalystViewer, svc: ServiceDep
    ) -> Response:
        fields = await posted(request, viewer)
        to = first(fields, "assignee")[:200]
        status = cases.Status.IN_REVIEW if to else cases.Status.OPEN  # nobody: back to open
        await _act(viewer, svc, risk_event_id, RiskEventPatch(status=status, assignee=to))
        return RedirectResponse(f"/cases/{risk_event_id}", status_code=303)

    @web.post("/cases/{risk_event_id}/label")
    async def label(
        request: Request, risk_event_id: CaseId, viewer: AnalystViewer, svc: ServiceDep
    ) -> Response:
        fields = await posted(request, viewer)
        chosen = first(fields, "label")
        if chosen not in {v.value for v in CLOSING_LABELS}:
            raise PageRefused(422, "Choose a label: fraud, legitimate or dispute.")
        note = first(fields, "note")[:2000] or None
        patch = RiskEventPatch(label=FeedbackLabel(chosen), note=note)
        await _act(viewer, svc, risk_event_id, patch)
        return RedirectResponse(f"/cases/{risk_event_id}?done=label", status_code=303)

    @web.post("/cases/{risk_event_id}/note")
    async def note(
        request: Request, risk_event_id: CaseId, viewer: AnalystViewer, svc: ServiceDep
    ) -> Response:
        fields = await posted(request, viewer)
        text = first(fields, "note")[:2000]
        if not text:
            raise PageRefused(422, "Write a note first.")
        await _act(viewer, svc, risk_event_id, RiskEventPatch(note=text))
        return RedirectResponse(f"/cases/{risk_event_id}?done=note", status_code=303)

    @web.post("/cases/{risk_event_id}/reopen")
    async def reopen(
        request: Request, risk_event_id: CaseId, viewer: AnalystViewer, svc: ServiceDep
    ) -> Response:
        await posted(request, viewer)
        patch = RiskEventPatch(status=cases.Status.OPEN)
        await _act(viewer, svc, risk_event_id, patch)
        return RedirectResponse(f"/cases/{risk_event_id}", status_code=303)

    return web
