"""The case workflow on risk events: status, assignee, label, and the append-only case journal.

A risk event is a case an analyst works: ``open`` when flagged, ``in_review`` once someone takes
it, ``closed`` when labelled (or closed by hand). Every change is one transaction that updates
the risk event's workflow columns and appends a journal row naming who did it, when, and what
they set, so the journal is the case's audit trail. Journal rows are never updated or deleted.

>>> from vigil.storage import Store
>>> store = Store("sqlite://"); store.init_schema()
>>> get(store, 1) is None, apply(store, 1, Change(note="x"), Actor("k", "ann")) is None
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from vigil.storage.rows import utc_now

if TYPE_CHECKING:
    from vigil.storage import Store


class Status(StrEnum):
    OPEN = "open"
    IN_REVIEW = "in_review"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the API key's id and name (the analyst as vigil knows them)."""

    key_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Change:
    """What one action sets; None leaves a field as it is. ``assignee=""`` unassigns."""

    status: Status | None = None
    assignee: str | None = None
    label: str | None = None
    note: str | None = None
    feedback_event_id: str | None = None

    @property
    def action(self) -> str:
        """The journal's one-word summary of the change.

        >>> Change(label="fraud").action, Change(assignee="ann").action, Change(note="n").action
        ('label', 'assign', 'note')
        """
        if self.label is not None:
            return "label"
        if self.assignee is not None:
            return "assign"
        if self.status is not None:
            return "status"
        return "note"

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.status, self.assignee, self.label, self.note))


def _row(store: Store, conn: Any, risk_event_id: int) -> dict[str, Any] | None:
    t = store.tables.risk_events
    found = conn.execute(select(t).where(t.c.risk_event_id == risk_event_id)).first()
    if found is None:
        return None
    item = dict(found._mapping)
    codes = item["reason_codes"]
    item["reason_codes"] = codes.split(",") if codes else []
    return item


def get(store: Store, risk_event_id: int) -> dict[str, Any] | None:
    """One risk event as :meth:`Store.list_risk_events` gives it, or None."""
    with store.engine.connect() as conn:
        return _row(store, conn, risk_event_id)


def journal(store: Store, risk_event_id: int) -> list[dict[str, Any]]:
    """The case's journal, oldest entry first."""
    j = store.tables.case_journal
    query = select(j).where(j.c.risk_event_id == risk_event_id).order_by(j.c.entry_id)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def apply(store: Store, risk_event_id: int, change: Change, actor: Actor) -> dict[str, Any] | None:
    """Apply ``change`` to the risk event and journal it, in one transaction; the risk event
    after it, or None when there is no such risk event.

    A label closes the case (unless ``status`` says otherwise) and records the analyst; closing
    sets ``closed_at``, reopening clears it.
    """
    if change.empty:
        raise ValueError("status, assignee, label or note: give at least one")
    t, j = store.tables.risk_events, store.tables.case_journal
    now = utc_now()
    status = change.status or (Status.CLOSED if change.label is not None else None)
    values: dict[str, Any] = {"updated_at": now}
    if status is not None:
        values["status"] = status.value
        values["closed_at"] = now if status is Status.CLOSED else None
    if change.assignee is not None:
        values["assignee"] = change.assignee or None
    if change.label is not None:
        values["analyst_label"] = change.label
        values["action_taken"] = f"labelled by {actor.name}"[:64]
    with store.transaction() as conn:
        updated = conn.execute(
            t.update().where(t.c.risk_event_id == risk_event_id).values(values)
        ).rowcount
        if updated != 1:
            return None
        conn.execute(
            j.insert(),
            {
                "risk_event_id": risk_event_id,
                "at": now,
                "actor_key_id": actor.key_id,
                "actor": actor.name,
                "action": change.action,
                "status": None if status is None else status.value,
                "assignee": change.assignee,
                "label": change.label,
                "feedback_event_id": change.feedback_event_id,
                # Free text: card numbers, IPs and e-mails stored as their pseudonyms.
                "note": store.privacy.pseudonyms.text(change.note) if change.note else None,
            },
        )
        return _row(store, conn, risk_event_id)


def status_counts(store: Store) -> dict[str, int]:
    """How many risk events are in each status (every status named, zero included)."""
    t = store.tables.risk_events
    counts = {s.value: 0 for s in Status}
    with store.engine.connect() as conn:
        for status, n in conn.execute(select(t.c.status, func.count()).group_by(t.c.status)):
            counts[status] = n
    return counts


@dataclass(slots=True)
class Case:
    """Risk events of one card or user close in time, worked as one: ``lead`` is the newest."""

    lead: dict[str, Any]
    members: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ids(self) -> list[int]:
        return [m["risk_event_id"] for m in self.members]

    @property
    def score(self) -> float:
        return max(m["score"] for m in self.members)


def group(rows: Sequence[dict[str, Any]], within: timedelta) -> list[Case]:
    """Group risk events (newest first, as listed) into cases: one whose card (else user) is a
    case's and whose event time is within ``within`` of that case's oldest member so far joins
    it. Order is kept: each case stands where its newest member was.

    >>> from datetime import UTC, datetime
    >>> at = lambda m: datetime(2024, 1, 1, 12, m, tzinfo=UTC)
    >>> rows = [{"risk_event_id": i, "card_id": c, "user_id": None, "event_time": at(m),
    ...          "score": 0.5} for i, c, m in [(3, "a", 30), (2, "b", 29), (1, "a", 10)]]
    >>> [c.ids for c in group(rows, timedelta(minutes=30))]
    [[3, 1], [2]]
    >>> [c.ids for c in group(rows, timedelta(minutes=5))]
    [[3], [2], [1]]
    """
    cases: list[Case] = []
    latest: dict[str, Case] = {}
    for row in rows:
        key = _entity(row)
        case = latest.get(key) if key is not None else None
        if case is not None and _close(case.members[-1], row, within):
            case.members.append(row)
            continue
        case = Case(lead=row, members=[row])
        cases.append(case)
        if key is not None:
            latest[key] = case
    return cases


def _entity(row: dict[str, Any]) -> str | None:
    if row.get("card_id"):
        return f"card:{row['card_id']}"
    if row.get("user_id"):
        return f"user:{row['user_id']}"
    return None


def _close(newer: dict[str, Any], older: dict[str, Any], within: timedelta) -> bool:
    a, b = newer.get("event_time"), older.get("event_time")
    return a is not None and b is not None and abs(a - b) <= within
