"""Feedback and case notes are stored without card numbers, IPs or e-mail addresses, on every
backend (issue 18: a note with a card number and an IP was stored in clear)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from tests.privacy.test_free_text import CLEAR, NOTE
from vigil.domain import Feedback
from vigil.storage import Store, cases


def test_notes_are_scrubbed_in_the_store(store: Store, make) -> None:
    tokens = store.privacy.pseudonyms
    event = make.tx("e1", minutes=0)
    store.record([event], [make.decision(event, 0.7, "review", "velocity")])
    note = Feedback(event_id="f-1", target_event_id="e1", label="fraud", note=NOTE,
                    timestamp=datetime(2024, 1, 1, tzinfo=UTC), source="analyst")  # fmt: skip
    assert store.insert_feedback([note]) == 1
    risk_event_id = store.list_risk_events()[0]["risk_event_id"]
    cases.apply(store, risk_event_id, cases.Change(note=NOTE), cases.Actor("k", "ann"))
    with store.engine.connect() as conn:
        stored = [
            conn.execute(select(store.tables.feedback.c.note)).scalar_one(),
            conn.execute(select(store.tables.case_journal.c.note)).scalar_one(),
        ]
    for text in stored:
        assert not any(value in text for value in CLEAR), text
        assert tokens.card("4111111111111111") in text
    assert store.load_feedback()[0].note == stored[0]
