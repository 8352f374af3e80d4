"""An analyst's action on a case (a risk event), shared by ``PATCH /v1/risk-events/{id}`` and the
workbench: a label goes through :meth:`DecisionService.label`, the one feedback path (``POST
/v1/feedback`` and the stream's feedback subject use it too), then the risk event's status,
assignee and label are updated and the action appended to the case journal
(:mod:`vigil.storage.cases`), and logged.

The feedback a case label stores has the id ``case-<risk event id>-<label>``, so labelling a case
the same way twice teaches the engine once.

>>> feedback_id(12, FeedbackLabel.FRAUD)
'case-12-fraud'
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vigil.api.keys import Principal
from vigil.api.schemas import FeedbackIn, RiskEventPatch
from vigil.api.service import DecisionService
from vigil.domain import FeedbackLabel
from vigil.storage import cases

log = logging.getLogger("vigil.cases")


def feedback_id(risk_event_id: int, label: FeedbackLabel) -> str:
    return f"case-{risk_event_id}-{label.value}"


def actor(principal: Principal) -> cases.Actor:
    return cases.Actor(key_id=principal.key_id, name=principal.name)


async def act(
    svc: DecisionService, risk_event_id: int, patch: RiskEventPatch, principal: Principal
) -> dict[str, Any]:
    """Apply ``patch`` to risk event ``risk_event_id`` as ``principal``; the risk event after it.
    :class:`LookupError` naming the id when there is no such risk event."""
    store = svc.store
    row = await asyncio.to_thread(cases.get, store, risk_event_id)
    if row is None:
        raise LookupError(f"risk_event_id: no risk event {risk_event_id}")
    feedback_event_id = None
    if patch.label is not None:
        out = await svc.label(
            FeedbackIn(
                event_id=feedback_id(risk_event_id, patch.label),
                decision_id=row["decision_id"],
                label=patch.label,
                note=patch.note,
                source="analyst",
            )
        )
        feedback_event_id = out.event_id
    change = cases.Change(
        status=patch.status,
        assignee=patch.assignee,
        label=None if patch.label is None else patch.label.value,
        note=patch.note,
        feedback_event_id=feedback_event_id,
    )
    after = await asyncio.to_thread(cases.apply, store, risk_event_id, change, actor(principal))
    if after is None:  # gone between the two reads: risk events are never deleted, so not seen
        raise LookupError(f"risk_event_id: no risk event {risk_event_id}")
    log.info(
        "case %s: %s by %s",
        risk_event_id,
        change.action,
        principal.name,
        extra={
            "risk_event_id": risk_event_id,
            "case_action": change.action,
            "key_id": principal.key_id,
            "status": after["status"],
            "label": change.label,
            "assignee": change.assignee,
        },
    )
    return after
