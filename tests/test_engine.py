"""The engine's decisions: what they name beyond the event itself."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from vigil.domain import Card
from vigil.engine import Engine
from vigil.profiles import MemoryProfileStore
from vigil.recorder import Recorder
from vigil.storage import Store
from vigil.storage.reference import ReferenceData

REFERENCE = ReferenceData(cards={"c-1": Card(card_id="c-1", user_id="u-1")})


def _withdrawal(event_id: str, **fields: str) -> dict[str, object]:
    return {
        "kind": "transaction",
        "event_id": event_id,
        "transaction_id": event_id,
        "card_id": "c-1",
        "type": "withdrawal",
        "amount": 100,
        "timestamp": datetime(2022, 1, 1, 9, tzinfo=UTC).isoformat(),
        **fields,
    }


def test_a_card_event_names_the_cards_owner_when_it_names_no_user(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    store.init_schema()
    recorder = Recorder(store)
    engine = Engine(REFERENCE, MemoryProfileStore(), recorder)
    decided = engine.process(_withdrawal("e-1"))
    recorder.flush()
    assert decided.user_id == "u-1"
    assert store.get_decision("e-1").user_id == "u-1"
    store.close()


def test_the_events_own_user_wins_and_an_unknown_card_names_none() -> None:
    engine = Engine.in_memory(REFERENCE)
    assert engine.process(_withdrawal("e-1", user_id="u-9")).user_id == "u-9"
    assert engine.process(_withdrawal("e-2", card_id="c-2")).user_id is None
