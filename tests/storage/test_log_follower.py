"""Following the log on PostgreSQL, where a sequence numbers decisions before their transaction
commits: a position overtaken by a later one still reaches the follower once it commits, and
one never committed (rolled back) is given up after a while."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from vigil.domain import Decision, Login
from vigil.storage import Store
from vigil.storage import rows as R
from vigil.storage.log import LogFollower, next_positions

pytestmark = pytest.mark.parametrize("store", ["postgresql"], indirect=True)
AT = datetime(2022, 1, 1, tzinfo=UTC)


def decision(event_id: str) -> Decision:
    return Decision(
        decision_id=f"d-{event_id}", event_id=event_id, event_kind="login", score=0, action="allow"
    )


def record(store: Store, event_id: str) -> None:
    store.record([Login(event_id=event_id, user_id="u", timestamp=AT)], [decision(event_id)])


def test_a_position_overtaken_before_its_commit_is_followed_once_committed(store: Store) -> None:
    record(store, "l-1")
    follower = LogFollower(store, after=0)
    assert follower.poll() == ["l-1"]
    with store.transaction() as conn:
        # Numbered now, committed after a later one (as a slower writer's batch would be).
        (late,) = next_positions(conn, store, 1)
        record(store, "l-3")
        assert follower.poll() == ["l-3"]
        row = R.decision_row(decision("l-2"), transaction_id=None, terminal_id=None, created_at=AT)
        conn.execute(store.tables.decisions.insert(), {**row, "seq": late})
    assert follower.poll() == ["l-2"]
    assert follower.poll() == []
    assert not follower.missing


def test_a_position_never_committed_is_given_up_after_the_patience(store: Store) -> None:
    follower = LogFollower(store, after=0, patience=0.5)
    with pytest.raises(RuntimeError), store.transaction() as conn:
        next_positions(conn, store, 2)
        raise RuntimeError("the batch failed: its positions are never used")
    record(store, "l-1")
    assert follower.poll() == ["l-1"]
    assert len(follower.missing) == 2
    time.sleep(0.6)
    assert follower.poll() == []
    assert not follower.missing
