"""The recorder's filter of stored event ids: what lets a server skip the database for nearly
every new event, and must never skip it for an id it holds."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from vigil.domain import Decision, Login
from vigil.recorder import IdFilter, Recorder
from vigil.storage import Store


def test_every_added_id_is_found_and_few_others_are() -> None:
    added = [f"evt-{i:07d}" for i in range(200_000)]
    ids = IdFilter(iter(added), len(added))  # an iterator, as a streamed query gives it
    assert all(event_id in ids for event_id in added)
    strangers = sum(f"new-{i}" in ids for i in range(200_000))
    assert strangers < 200_000 * 0.002  # about 0.1 % at 16 bits an id


def test_an_empty_or_overfull_filter_still_answers() -> None:
    assert "e-1" not in IdFilter([], 0)
    assert 42 not in IdFilter(["42"], 1)  # not a string: never an event id
    crowded = IdFilter([f"e-{i}" for i in range(5000)], 10)  # ten times what it was sized for
    assert all(f"e-{i}" in crowded for i in range(5000))


def test_a_filter_grows_past_what_it_was_made_for_and_keeps_its_false_positives_low() -> None:
    ids = IdFilter([], 0)
    added = [f"evt-{i:07d}" for i in range(300_000)]  # beyond its first layers, in one go
    ids.add(iter(added))
    assert all(event_id in ids for event_id in added)
    assert sum(f"new-{i}" in ids for i in range(200_000)) < 200_000 * 0.004


def test_ids_other_processes_commit_are_learnt_and_looked_up_when_following_falls_behind(
    store: Store,
) -> None:
    recorder = Recorder(store)
    record(store, "l-1")  # by another process, after this recorder started
    assert recorder.decided(login("l-1")) is None  # not known here yet
    assert recorder.follow(trust_seconds=0.2) == 1
    assert recorder.decided(login("l-1")).decision_id == "d-l-1"
    record(store, "l-2")
    assert recorder.decided(login("l-2")) is None  # its claim in the shared profiles answers
    time.sleep(0.3)  # no poll since: what is not known here is asked for
    assert recorder.decided(login("l-2")).decision_id == "d-l-2"
    assert recorder.decided(login("l-3")) is None


def login(event_id: str) -> Login:
    return Login(event_id=event_id, user_id="u", timestamp=datetime(2022, 1, 1, tzinfo=UTC))


def record(store: Store, event_id: str) -> None:
    decision = Decision(
        decision_id=f"d-{event_id}", event_id=event_id, event_kind="login", score=0, action="allow"
    )
    store.record([login(event_id)], [decision])
