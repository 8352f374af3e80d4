"""The server's recorder: commits off the loop, keeps idempotency in the gap, isolates a bad row."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from typing import Any

import pytest

from vigil.api.recording import BackgroundRecorder
from vigil.config import WriterKind
from vigil.domain import Decision, Login, Reason, Transaction
from vigil.storage import Store


def _login(event_id: str, hour: int = 9) -> Login:
    return Login(event_id=event_id, user_id="u-1", timestamp=datetime(2024, 5, 1, hour, tzinfo=UTC))


def _decision(event_id: str, decision_id: str) -> Decision:
    return Decision(
        decision_id=decision_id, event_id=event_id, event_kind="login", score=0, action="allow"
    )


@pytest.fixture(params=["process", "thread"])
def writer(request: pytest.FixtureRequest) -> WriterKind:
    return request.param


def test_an_event_decided_before_a_restart_gets_its_first_decision_at_any_timestamp(
    store: Store, writer: WriterKind
) -> None:
    store.record([_login("a")], [_decision("a", "d-first")])
    recorder = BackgroundRecorder(
        store, writer=writer
    )  # a restart: a new recorder on the same database
    # Re-sent an hour later than every stored decision: still found, not decided afresh.
    assert recorder.decided(_login("a", 10)).decision_id == "d-first"
    assert recorder.decided(_login("never-seen", 10)) is None
    recorder.close()


def test_a_refused_decision_does_not_take_its_batch_down(store: Store, writer: WriterKind) -> None:
    failures: list[int] = []
    recorder = BackgroundRecorder(store, on_error=failures.append, writer=writer)
    # Another process sharing the database decides "b" after this one started (so this
    # recorder's filter of stored ids lacks it): the database refuses the second decision.
    store.record([_login("b")], [_decision("b", "d-first")])
    assert recorder.decided(_login("b", 10)) is None
    events = [_login(f"e-{i}") for i in range(5)] + [_login("b", 10)] + [_login("z")]
    for i, event in enumerate(events):
        recorder.add(event, _decision(event.event_id, f"d-{i}"))
    recorder.close()
    assert failures == [1] and recorder.unrecorded == 1
    stored = store.get_decisions([e.event_id for e in events])
    assert sorted(stored) == ["b", "e-0", "e-1", "e-2", "e-3", "e-4", "z"]
    assert stored["b"].decision_id == "d-first"
    # From then on this process answers with the stored, first decision.
    assert recorder.decided(_login("b", 11)).decision_id == "d-first"


def test_a_decision_in_flight_is_found_until_committed(store: Store, writer: WriterKind) -> None:
    recorder = BackgroundRecorder(store, writer=writer)
    login = _login("f-1")
    recorder.add(login, _decision("f-1", "d-1"))
    recorder.flush()  # handed to the writer: found in memory or, once committed, in the store
    assert recorder.decided(login).decision_id == "d-1"
    recorder.drain()
    assert recorder.buffered == 0
    assert recorder.decided(login).decision_id == "d-1"
    recorder.close()


def test_a_file_database_gets_a_writer_process_and_a_memory_one_a_thread(tmp_path) -> None:
    on_file = Store(f"sqlite:///{tmp_path}/v.db")
    in_memory = Store("sqlite://")
    for store in (on_file, in_memory):
        store.init_schema()
    assert not BackgroundRecorder(on_file).in_process
    assert BackgroundRecorder(in_memory).in_process
    assert BackgroundRecorder(on_file, writer="thread").in_process


def test_a_dead_writer_process_is_replaced_and_nothing_is_lost_unseen(store: Store) -> None:
    failures: list[int] = []
    recorder = BackgroundRecorder(store, on_error=failures.append, writer="process")
    recorder.add(_login("before"), _decision("before", "d-0"))
    recorder.drain()
    assert recorder._writer.pid is not None
    os.kill(recorder._writer.pid, signal.SIGKILL)
    # Handed over before or after the pool notices its writer is gone: given up and counted,
    # or committed by the new writer; never dropped without a count.
    recorder.add(_login("maybe"), _decision("maybe", "d-1"))
    recorder.drain()
    recorder.add(_login("after"), _decision("after", "d-2"))
    recorder.close()
    stored = store.get_decisions(["before", "maybe", "after"])
    assert {"before", "after"} <= set(stored)
    assert ("maybe" in stored) != (failures == [1])
    assert recorder.unrecorded == sum(failures)


def test_events_and_decisions_cross_to_the_writer_process_unchanged() -> None:
    """The writer process receives each event and decision as it was decided."""
    from multiprocessing.reduction import ForkingPickler

    from vigil.engine import Engine

    engine = Engine.in_memory()
    sent: list[Any] = [
        Transaction(
            event_id="e-1",
            transaction_id="t-1",
            timestamp=datetime(2022, 1, 1, tzinfo=UTC),
            type="withdrawal",
            amount="12500.50",
            card_id="c-1",
            terminal_id="ATM-1",
            latitude=6.45,
            longitude=3.39,
        ),
        Login(
            event_id="l-1",
            user_id="u-1",
            timestamp=datetime(2022, 1, 1, tzinfo=UTC),
            ip="102.89.4.17",
            device_id="dev-1",
            success=False,
        ),
    ]
    sent += [engine.process(event) for event in sent]
    sent.append(
        Decision(
            decision_id="d-9",
            event_id="e-9",
            event_kind="transaction",
            score=0.95,
            action="block",
            reasons=[Reason(code="impossible_travel", score=0.95, detail="500 km in 5 min")],
            model_versions={"transaction": "v0001"},
        )
    )
    sent_bytes = ForkingPickler.dumps(sent)
    received = ForkingPickler.loads(sent_bytes)
    assert received == sent
    assert [type(r) for r in received] == [type(s) for s in sent]
    assert received[-1].reasons[0].model_dump() == sent[-1].reasons[0].model_dump()
    assert [r.model_dump_json() for r in received] == [s.model_dump_json() for s in sent]
