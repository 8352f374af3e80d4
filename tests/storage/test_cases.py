"""The case workflow (vigil.storage.cases), the timeline around a case (vigil.storage.timeline)
and the overview's figures (vigil.storage.figures), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from tests.storage.conftest import T0
from vigil.domain import Terminal
from vigil.storage import Store, cases, figures, timeline

ANN = cases.Actor("k-ann", "ann")


def _flag(store: Store, make) -> list[dict]:
    """Three flagged withdrawals of one card (two at B1-1, one at B1-2) and a login."""
    store.upsert_terminals(
        [
            Terminal(terminal_id="B1-1", latitude=6.45, longitude=3.39),
            Terminal(terminal_id="B1-2", latitude=9.07, longitude=7.49),
        ]
    )
    events = [
        make.tx("e1", minutes=0),
        make.tx("e2", minutes=10, terminal_id="B1-2"),
        make.tx("e3", minutes=200),
        make.login("l1", minutes=5, latitude=6.5, longitude=3.4, country="NG"),
    ]
    decisions = [
        make.decision(events[0], 0.7, "review", "velocity"),
        make.decision(events[1], 0.95, "block", "impossible_travel", "velocity"),
        make.decision(events[2], 0.6, "step_up", "amount_anomaly"),
        make.decision(events[3], 0.0, "allow"),
    ]
    store.record(events, decisions)
    return store.list_risk_events()


def test_each_action_updates_the_case_and_appends_to_its_journal(store: Store, make) -> None:
    newest, middle, oldest = _flag(store, make)
    assert cases.status_counts(store) == {"open": 3, "in_review": 0, "closed": 0}
    taken = cases.apply(
        store, middle["risk_event_id"], cases.Change(cases.Status.IN_REVIEW, "ann"), ANN
    )
    assert (taken["status"], taken["assignee"], taken["closed_at"]) == ("in_review", "ann", None)
    closed = cases.apply(
        store, middle["risk_event_id"], cases.Change(label="fraud", note="stolen"), ANN
    )
    assert (closed["status"], closed["analyst_label"]) == ("closed", "fraud")
    assert closed["closed_at"] is not None and closed["assignee"] == "ann"
    journal = cases.journal(store, middle["risk_event_id"])
    assert [(j["action"], j["status"], j["actor"]) for j in journal] == [
        ("assign", "in_review", "ann"),
        ("label", "closed", "ann"),
    ]
    assert journal[1]["note"] == "stolen" and journal[0]["at"] <= journal[1]["at"]
    assert cases.status_counts(store) == {"open": 2, "in_review": 0, "closed": 1}
    open_ids = [r["risk_event_id"] for r in store.list_risk_events(status=["open", "in_review"])]
    assert open_ids == [newest["risk_event_id"], oldest["risk_event_id"]]
    assert store.list_risk_events(assignee="ann")[0]["risk_event_id"] == middle["risk_event_id"]
    assert cases.apply(store, 999_999, cases.Change(note="x"), ANN) is None
    assert cases.journal(store, newest["risk_event_id"]) == []


def test_a_pattern_of_reasons_and_the_order_by_score(store: Store, make) -> None:
    _flag(store, make)
    both = store.list_risk_events(reason=["velocity", "impossible_travel"])
    assert [r["event_id"] for r in both] == ["e2"]
    by_score = store.list_risk_events(by_score=True)
    assert [r["event_id"] for r in by_score] == ["e2", "e1", "e3"]


def test_alerts_of_one_card_close_in_time_are_one_case(store: Store, make) -> None:
    rows = _flag(store, make)
    grouped = cases.group(rows, timedelta(hours=1))
    assert [[m["event_id"] for m in c.members] for c in grouped] == [["e3"], ["e2", "e1"]]
    assert grouped[1].score == 0.95


def test_the_timeline_places_each_event_with_its_decision(store: Store, make) -> None:
    _flag(store, make)
    around = timeline.around(store, T0 + timedelta(minutes=10), card_id="c-B1-1", user_id="u-B1-1")
    assert [e["event_id"] for e in around] == ["e1", "l1", "e2", "e3"]
    e2 = around[2]
    assert (e2["latitude"], e2["longitude"]) == (9.07, 7.49)  # the terminal's place
    assert (e2["action"], e2["reason_codes"]) == ("block", ["impossible_travel", "velocity"])
    assert around[1]["kind"] == "login" and around[1]["country"] == "NG"
    assert set(timeline.by_ids(store, ["e2", "l1", "nope"])) == {"e2", "l1"}
    assert [e["event_id"] for e in timeline.recent(store, "terminal", "B1-1")] == ["e3", "e1"]
    assert [e["event_id"] for e in timeline.recent(store, "user", "u-B1-1", limit=2)] == [
        "e3",
        "e2",
    ]


def test_the_overview_figures(store: Store, make) -> None:
    rows = _flag(store, make)
    cases.apply(store, rows[1]["risk_event_id"], cases.Change(label="fraud"), ANN)
    cases.apply(store, rows[2]["risk_event_id"], cases.Change(label="legitimate"), ANN)
    assert figures.top_reasons(store)[0] == ("velocity", 2)
    precision = {code: (p, n) for code, p, n in figures.precision_by_reason(store)}
    assert precision["velocity"] == (0.5, 2) and precision["impossible_travel"] == (1.0, 1)
    series = figures.decisions_over_time(store, "day")
    assert series.total("block") == 1 and series.total("allow") == 1 and len(series.buckets) == 24
    assert dict(figures.queue_age(store))["< 1 h"] == 1  # e3 is the newest: age zero


def test_a_purged_risk_event_takes_its_journal_with_it(store: Store, make) -> None:
    from vigil.privacy.retention import RetentionPolicy, purge

    rows = _flag(store, make)
    for row in rows:
        cases.apply(store, row["risk_event_id"], cases.Change(note="seen"), ANN)
    policy = RetentionPolicy(None, None, risk_events_days=1)
    deleted = purge(store, policy, T0 + timedelta(days=1, minutes=100))
    assert deleted["risk_events"] == 2  # e1 and e2; e3 is younger than a day then
    assert [cases.journal(store, r["risk_event_id"]) != [] for r in rows] == [True, False, False]
