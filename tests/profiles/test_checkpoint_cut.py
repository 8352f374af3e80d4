"""A checkpoint of in-process profiles taken a few at a time holds each profile as it was at
the checkpoint's cut, whatever changed meanwhile (:class:`vigil.profiles.MemoryProfileStore`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vigil.engine import Engine
from vigil.profiles import MemoryProfileStore

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _withdrawal(engine: Engine, i: int, card: str) -> None:
    engine.process(
        {
            "kind": "transaction",
            "event_id": f"e-{i}",
            "transaction_id": f"t-{i}",
            "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
            "type": "withdrawal",
            "amount": "40.00",
            "card_id": card,
            "user_id": f"u-{card}",
            "terminal_id": "ATM-1",
        }
    )


def _engine_with_cards(n: int) -> tuple[Engine, MemoryProfileStore]:
    engine = Engine.in_memory()
    assert isinstance(engine.profiles, MemoryProfileStore)
    for i in range(n):
        _withdrawal(engine, i, f"c-{i}")
    return engine, engine.profiles


def test_profiles_that_change_while_it_is_taken_are_saved_as_at_the_cut() -> None:
    engine, profiles = _engine_with_cards(30)
    at_cut = {(kind, key): p.to_bytes() for kind, key, p in profiles.items()}
    profiles.begin_checkpoint()
    assert profiles.take(5) is False
    for i in range(30, 40):  # cards 0-9 again, and the terminal and users they share
        _withdrawal(engine, i, f"c-{i - 30}")
    while not profiles.take(5):
        pass
    rows = profiles.checkpoint_rows()
    assert {(kind, key): data for kind, key, data in rows} == at_cut
    # What changed after the cut goes to the next checkpoint, as it is by then.
    after = {(kind, key): data for kind, key, data in profiles.changed()}
    assert set(after) == {("card", f"c-{i}") for i in range(10)} | {("terminal", "ATM-1")} | {
        ("user", f"u-c-{i}") for i in range(10)
    }
    assert after[("card", "c-0")] != at_cut[("card", "c-0")]


def test_a_profile_erased_while_it_is_taken_is_not_written_back() -> None:
    _, profiles = _engine_with_cards(10)
    profiles.begin_checkpoint()
    profiles.take(3)
    taken = next(iter(profiles._taken))
    to_take = next((k, key) for k, key, _ in profiles.items() if (k, key) not in profiles._taken)
    erased = [taken, to_take]
    assert profiles.delete(erased) == 2
    while not profiles.take(4):
        pass
    saved = {(kind, key) for kind, key, _ in profiles.checkpoint_rows()}
    assert saved and not saved & set(erased)


def test_an_abandoned_checkpoint_leaves_its_profiles_to_the_next() -> None:
    _, profiles = _engine_with_cards(10)
    changed = set(profiles._changed)
    profiles.begin_checkpoint()
    profiles.take(4)
    profiles.abandon_checkpoint()
    assert not profiles.taking
    assert {(kind, key) for kind, key, _ in profiles.changed()} == changed
