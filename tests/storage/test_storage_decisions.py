"""record(): events, decisions and risk events in one transaction; reading them back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from sqlalchemy.exc import IntegrityError

from vigil.domain import Decision
from vigil.storage import Store

JAN = datetime(2022, 1, 10, tzinfo=UTC)
MAR = datetime(2022, 3, 10, tzinfo=UTC)


def _batch(make, prefix: str, at: datetime = JAN):
    tx = make.tx(f"{prefix}-tx", at=at, terminal_id="B1-7")
    start = make.tx(
        f"{prefix}-s",
        at=at,
        minutes=1,
        phase="start",
        amount=None,
        transaction_id=f"{prefix}-two-phase",
    )
    end = make.tx(
        f"{prefix}-e", at=at, minutes=2, phase="end", transaction_id=f"{prefix}-two-phase"
    )
    login = make.login(f"{prefix}-login", at=at, minutes=3)
    events = [tx, start, end, login]
    decisions = [
        make.decision(tx, 0.1, "allow"),
        make.decision(start, 0.6, "step_up", "velocity"),
        make.decision(end, 0.95, "block", "impossible_travel", "amount_z"),
        make.decision(login, 0.75, "review", "new_device"),
    ]
    return events, decisions


def test_record_round_trips_decisions_and_flags_risk_events(store: Store, make) -> None:
    events, decisions = _batch(make, "a")
    store.record(events, decisions)
    counts = store.counts()
    assert (counts["transactions"], counts["logins"], counts["decisions"]) == (3, 1, 4)
    assert counts["risk_events"] == 3  # every action but allow
    for d in decisions:
        assert store.get_decision(d.event_id) == d
    assert store.get_decision("never-seen") is None
    got = store.get_decisions([d.event_id for d in decisions] + ["never-seen", "a-tx"])
    assert got == {d.event_id: d for d in decisions}
    got_time = store.get_decision("a-e").event_time
    assert got_time == JAN + timedelta(minutes=2) and got_time.tzinfo == UTC

    risk = store.list_risk_events()
    assert {r["event_id"] for r in risk} == {"a-s", "a-e", "a-login"}
    block = next(r for r in risk if r["event_id"] == "a-e")
    assert block["reason_codes"] == ["impossible_travel", "amount_z"]
    assert (block["status"], block["action"], block["score"]) == ("open", "block", 0.95)
    assert block["decision_id"] == "d-a-e" and block["analyst_label"] is None


def test_record_is_idempotent_for_events_already_stored(store: Store, make) -> None:
    events, decisions = _batch(make, "a")
    store.insert_transactions(events[:3])
    store.record(events, decisions)
    assert store.counts()["transactions"] == 3 and store.counts()["decisions"] == 4


def test_record_failing_mid_batch_leaves_nothing_of_it(store: Store, make) -> None:
    store.record(*_batch(make, "a"))
    before = store.counts()
    events, decisions = _batch(make, "b", at=MAR)  # a month with no partition yet
    clash = decisions[-1].model_copy(update={"decision_id": "d-a-tx"})  # id taken in batch a
    with pytest.raises(IntegrityError):
        store.record(events, [*decisions[:-1], clash])
    assert store.counts() == before
    assert store.get_decision("b-tx") is None
    assert list(store.iter_events(start=MAR - timedelta(days=1))) == []
    # The rolled-back batch must not leave a month believed partitioned when it is not.
    store.record(events, decisions)
    assert store.counts()["decisions"] == before["decisions"] + 4
    assert len(list(store.iter_events(start=MAR - timedelta(days=1)))) == 4


def test_record_rejects_a_batch_deciding_one_event_twice(store: Store, make) -> None:
    events, decisions = _batch(make, "a")
    with pytest.raises(ValueError, match=r"decisions\[4\]\.event_id: 'a-tx' decided twice"):
        store.record(events, [*decisions, decisions[0].model_copy(update={"decision_id": "x"})])
    assert store.counts()["transactions"] == 0


def test_record_refuses_ids_wider_than_their_columns(store: Store, make) -> None:
    events, decisions = _batch(make, "a")
    wide = decisions[0].model_copy(update={"decision_id": "d" * 129})
    with pytest.raises(ValueError, match=r"decision_id: 'dddd.* must be 1 to 128 characters"):
        store.record(events, [wide, *decisions[1:]])
    assert store.counts()["transactions"] == 0


def test_record_joins_an_outer_transaction(store: Store, make) -> None:
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.record(*_batch(make, "a"), conn=conn)
        raise RuntimeError("caller failed after recording")
    assert store.counts()["decisions"] == 0


def test_record_ten_thousand_in_one_call(store: Store, make) -> None:
    events = [make.tx(f"e{i:05d}", at=JAN, minutes=i) for i in range(10_000)]
    decisions = [
        make.decision(
            e, 0.95 if i % 100 == 0 else 0.05, "block" if i % 100 == 0 else "allow", "velocity"
        )
        for i, e in enumerate(events)
    ]
    store.record(events, decisions)
    counts = store.counts()
    assert (counts["transactions"], counts["decisions"], counts["risk_events"]) == (
        10_000,
        10_000,
        100,
    )


def test_decision_frame_has_the_evaluation_columns(store: Store, make) -> None:
    events, decisions = _batch(make, "a")
    store.record(events, decisions)
    frame = store.decision_frame()
    assert frame.columns == [
        "event_id",
        "transaction_id",
        "unit_id",
        "event_kind",
        "event_time",
        "score",
        "action",
        "reason_codes",
        "evidence",
        "user_id",
        "card_id",
        "terminal_id",
        "latency_us",
    ]
    assert frame.schema["event_time"] == pl.Datetime("us", "UTC")
    assert frame.schema["reason_codes"] == pl.List(pl.String)
    rows = {r["event_id"]: r for r in frame.iter_rows(named=True)}
    assert frame.height == 4
    assert rows["a-s"]["unit_id"] == rows["a-e"]["unit_id"] == "a-two-phase"
    assert rows["a-login"]["unit_id"] == "a-login" and rows["a-login"]["transaction_id"] is None
    assert rows["a-tx"]["terminal_id"] == "B1-7"
    assert rows["a-e"]["reason_codes"] == ["impossible_travel", "amount_z"]
    assert rows["a-tx"]["reason_codes"] == []
    assert rows["a-e"]["event_time"] == JAN + timedelta(minutes=2)
    assert rows["a-e"]["latency_us"] == 42.5 and rows["a-e"]["action"] == "block"
    assert frame["event_id"].to_list() == ["a-tx", "a-s", "a-e", "a-login"]


def test_decision_frame_of_an_empty_store_keeps_its_schema(store: Store) -> None:
    frame = store.decision_frame()
    assert frame.height == 0 and frame.schema["reason_codes"] == pl.List(pl.String)


def _risky(make, n: int) -> tuple[list, list[Decision]]:
    events, decisions = [], []
    for i in range(n):
        tx = make.tx(
            f"r{i:02d}", at=JAN, minutes=10 * i, card_id=f"c-B1-{i % 3}", user_id=f"u-B1-{i % 2}"
        )
        events.append(tx)
        action, codes = [("review", ("amount",)), ("block", ("amount_z", "velocity"))][i % 2]
        decisions.append(make.decision(tx, 0.8 if action == "review" else 0.95, action, *codes))
    return events, decisions


def test_list_risk_events_filters(store: Store, make) -> None:
    store.record(*_risky(make, 12))
    ids = lambda rows: sorted(r["event_id"] for r in rows)  # noqa: E731
    assert len(store.list_risk_events()) == 12
    assert ids(store.list_risk_events(user_id="u-B1-1")) == [f"r{i:02d}" for i in range(1, 12, 2)]
    assert ids(store.list_risk_events(card_id="c-B1-0")) == ["r00", "r03", "r06", "r09"]
    assert ids(store.list_risk_events(action="review")) == [f"r{i:02d}" for i in range(0, 12, 2)]
    # "amount" matches the exact code only, not "amount_z".
    assert ids(store.list_risk_events(reason="amount")) == [f"r{i:02d}" for i in range(0, 12, 2)]
    assert ids(store.list_risk_events(reason="velocity", card_id="c-B1-1")) == ["r01", "r07"]
    assert store.list_risk_events(reason="amount%") == []
    since, until = JAN + timedelta(minutes=30), JAN + timedelta(minutes=60)
    assert ids(store.list_risk_events(since=since, until=until)) == ["r03", "r04", "r05"]
    with pytest.raises(ValueError, match="action: 'deny' is not one of"):
        store.list_risk_events(action="deny")
    with pytest.raises(ValueError, match="since: naive datetime"):
        store.list_risk_events(since=datetime(2022, 1, 1))
    with pytest.raises(ValueError, match="limit: 0"):
        store.list_risk_events(limit=0)


def test_list_risk_events_paginates_newest_first(store: Store, make) -> None:
    store.record(*_risky(make, 12))
    pages = [store.list_risk_events(limit=5, offset=o) for o in (0, 5, 10, 15)]
    assert [len(p) for p in pages] == [5, 5, 2, 0]
    order = [r["event_id"] for p in pages for r in p]
    assert order == [f"r{i:02d}" for i in reversed(range(12))]


def test_update_risk_event_records_the_analyst(store: Store, make) -> None:
    store.record(*_risky(make, 2))
    rid = store.list_risk_events(card_id="c-B1-0")[0]["risk_event_id"]
    assert store.update_risk_event(
        rid, status="closed", analyst_label="fraud", action_taken="card_blocked"
    )
    row = store.list_risk_events(card_id="c-B1-0")[0]
    assert (row["status"], row["analyst_label"], row["action_taken"]) == (
        "closed",
        "fraud",
        "card_blocked",
    )
    assert row["updated_at"].tzinfo == UTC
    assert store.update_risk_event(10_000, status="closed") is False
    with pytest.raises(ValueError, match="status: '' must be 1 to 16"):
        store.update_risk_event(rid, status="")
