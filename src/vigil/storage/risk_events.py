"""Risk events: the append-only audit log of flagged decisions, as analysts list and work them
(:mod:`vigil.storage.cases` journals the case workflow on them; :mod:`vigil.storage.audit`
chains them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, literal, select

from vigil.domain.decisions import Action
from vigil.storage import rows as R
from vigil.storage.database import Database, aware

_MAX_LIMIT = 10_000


class RiskEventStore(Database):
    """The ``risk_events`` table, read with filters and pagination, and the analyst's workflow
    columns set (:meth:`DecisionStore.record` inserts the rows; :mod:`vigil.privacy.erasure`
    and :mod:`vigil.privacy.retention` are the only others to touch them).

    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> store.list_risk_events(status="open"), store.update_risk_event(1, status="closed")
    ([], False)
    """

    def list_risk_events(
        self,
        *,
        user_id: str | None = None,
        card_id: str | None = None,
        action: Action | str | None = None,
        reason: str | Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        status: str | Sequence[str] | None = None,
        assignee: str | None = None,
        by_score: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Risk events newest first (by event time, then id; ``by_score``: highest score
        first, then newest), filtered and paginated.

        ``reason`` matches one reason code exactly (several: every one of them, a pattern);
        ``since`` is inclusive, ``until`` exclusive;
        ``status`` (one, or any of several) and ``assignee`` match exactly (the case workflow,
        vigil.storage.cases).
        Each dict has the risk_events columns, with ``reason_codes`` as a list.
        """
        if not 0 < limit <= _MAX_LIMIT:
            raise ValueError(f"limit: {limit} must be between 1 and {_MAX_LIMIT}")
        if offset < 0:
            raise ValueError(f"offset: {offset} must not be negative")
        t = self.tables.risk_events
        query = select(t)
        if user_id is not None:
            query = query.where(t.c.user_id == user_id)
        if card_id is not None:
            query = query.where(t.c.card_id == self.privacy.pseudonyms.card(card_id))
        if action is not None:
            try:
                query = query.where(t.c.action == Action(action).value)
            except ValueError:
                valid = ", ".join(a.value for a in Action)
                raise ValueError(f"action: {action!r} is not one of {valid}") from None
        padded = literal(",") + t.c.reason_codes + literal(",")
        for code in [reason] if isinstance(reason, str) else reason or ():
            query = query.where(padded.contains(f",{code},", autoescape=True))
        if aware(since, "since") is not None:
            query = query.where(t.c.event_time >= since)
        if aware(until, "until") is not None:
            query = query.where(t.c.event_time < until)
        if isinstance(status, str):
            query = query.where(t.c.status == status)
        elif status is not None:
            query = query.where(t.c.status.in_(list(status)))
        if assignee is not None:
            query = query.where(t.c.assignee == assignee)
        newest = (t.c.event_time.desc(), t.c.risk_event_id.desc())
        query = query.order_by(t.c.score.desc(), *newest) if by_score else query.order_by(*newest)
        with self.engine.connect() as conn:
            result = conn.execute(query.limit(limit).offset(offset))
            out = []
            for r in result:
                item = dict(r._mapping)
                codes = item["reason_codes"]
                item["reason_codes"] = codes.split(",") if codes else []
                out.append(item)
            return out

    def update_risk_event(
        self,
        risk_event_id: int,
        *,
        status: str | None = None,
        analyst_label: str | None = None,
        action_taken: str | None = None,
        conn: Connection | None = None,
    ) -> bool:
        """Set an analyst's status, label or action on a risk event; False if it does not exist."""
        t = self.tables.risk_events
        values: dict[str, Any] = {}
        for name, value, size in (
            ("status", status, 16),
            ("analyst_label", analyst_label, 32),
            ("action_taken", action_taken, 64),
        ):
            if value is None:
                continue
            if not 0 < len(value) <= size:
                raise ValueError(f"{name}: {value!r} must be 1 to {size} characters")
            values[name] = value
        if not values:
            raise ValueError("status, analyst_label or action_taken: give at least one")
        values["updated_at"] = R.utc_now()
        with self._joined(conn) as c:
            result = c.execute(t.update().where(t.c.risk_event_id == risk_event_id).values(values))
            return result.rowcount == 1
