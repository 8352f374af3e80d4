"""Feedback: the later labels on events (confirmed fraud, legitimate, dispute, StandIn
recovered or lost) from analysts, customers and settlement files, and what terminal risk
learns from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from vigil.domain.events import Feedback, FeedbackLabel, Phase
from vigil.storage import rows as R
from vigil.storage.database import Database, aware, need


class FeedbackStore(Database):
    """The ``feedback`` table, an event table of its own: idempotent by ``event_id``, each row
    naming the event it labels (``target_event_id``).

    >>> from datetime import datetime, UTC
    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> label = Feedback(event_id="f-1", target_event_id="e-1", label="fraud",
    ...                  timestamp=datetime(2022, 1, 2, tzinfo=UTC))
    >>> store.insert_feedback([label]), [f.label.value for f in store.load_feedback("e-1")]
    (1, ['fraud'])
    """

    def insert_feedback(self, items: Sequence[Feedback], conn: Connection | None = None) -> int:
        """Insert feedback; an event_id already stored is skipped. Returns rows inserted.

        Notes are free text: card numbers, IPs and e-mail addresses typed into them are stored
        as their pseudonyms (:meth:`vigil.privacy.Pseudonymiser.text`), never in clear."""
        rows = [R.feedback_row(f) for f in need(items, Feedback, "feedback")]
        for row in rows:
            if row.get("note"):
                row["note"] = self.privacy.pseudonyms.text(row["note"])
        with self._joined(conn) as c:
            return self.insert_new(c, self.tables.feedback, rows)

    def load_feedback(self, target_event_id: str | None = None) -> list[Feedback]:
        """Feedback in timestamp order, all of it or only on one event."""
        t = self.tables.feedback
        query = select(t).order_by(t.c.timestamp, t.c.event_id)
        if target_event_id is not None:
            query = query.where(t.c.target_event_id == target_event_id)
        with self.engine.connect() as conn:
            return [R.feedback_from_row(r._mapping) for r in conn.execute(query)]

    def terminal_history(
        self, start: datetime
    ) -> tuple[list[tuple[datetime, str, str]], list[tuple[datetime, str]]]:
        """What terminal risk is fed, since ``start``: the completed transactions at a terminal
        as ``(timestamp, event_id, terminal_id)`` and the fraud labels as ``(timestamp,
        target_event_id)``, each in time order (a restarted engine rebuilds it from these)."""
        aware(start, "start")
        tx, fb = self.tables.transactions, self.tables.feedback
        completed = (
            select(tx.c.timestamp, tx.c.event_id, tx.c.terminal_id)
            .where(tx.c.timestamp >= start, tx.c.terminal_id.is_not(None))
            .where(tx.c.phase != Phase.START.value)
            .order_by(tx.c.timestamp, tx.c.event_id)
        )
        frauds = (
            select(fb.c.timestamp, fb.c.target_event_id)
            .where(fb.c.timestamp >= start, fb.c.label == FeedbackLabel.FRAUD.value)
            .order_by(fb.c.timestamp, fb.c.event_id)
        )
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(completed)], [
                tuple(r) for r in conn.execute(frauds)
            ]
