"""Replay and restart: event-time order, resuming from the snapshot, idempotency by event id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from vigil.engine import Engine
from vigil.profiles import MemoryProfileStore
from vigil.recorder import Recorder
from vigil.replay import in_event_time_order, replay
from vigil.storage import Store

T0 = datetime(2022, 3, 1, 8, tzinfo=UTC)


def _logins(n: int, start: int = 0) -> list[dict]:
    return [
        {
            "kind": "login",
            "event_id": f"l{i}",
            "user_id": "u-1",
            "country": "NG",
            "device_id": "phone",
            "timestamp": T0 + timedelta(hours=i),
        }
        for i in range(start, start + n)
    ]


def _engine(store: Store) -> Engine:
    profiles = MemoryProfileStore()
    profiles.restore(store)
    return Engine(store.load_reference(), profiles, Recorder(store, batch_size=7))


def test_unsorted_file_is_replayed_in_event_time_order(tmp_path: Path) -> None:
    rows = _logins(20)
    shuffled = pl.DataFrame(rows[10:] + rows[:10])
    for name, write in (("e.parquet", shuffled.write_parquet), ("e.csv", shuffled.write_csv)):
        path = tmp_path / name
        write(path)
        ordered = in_event_time_order(path)
        assert ordered != path
        frame = pl.read_parquet(ordered) if name.endswith("parquet") else pl.read_csv(ordered)
        assert frame["event_id"].to_list() == [f"l{i}" for i in range(20)]
    pl.DataFrame(rows).write_parquet(tmp_path / "sorted.parquet")
    assert in_event_time_order(tmp_path / "sorted.parquet") == tmp_path / "sorted.parquet"


def test_restart_resumes_profiles_and_never_decides_twice(tmp_path: Path) -> None:
    from vigil.domain import parse_event

    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    store.init_schema()
    first = _engine(store)
    summary = replay(first, [parse_event(r) for r in _logins(30)])
    assert summary.events == 30 and store.counts()["decisions"] == 30
    first.profiles.snapshot(store)
    earlier = store.get_decision("l5")

    # A new process: same store, profiles restored from the snapshot.
    second = _engine(store)
    assert second.profiles.get("user", "u-1").n == 30
    again = second.process(parse_event(_logins(1, start=5)[0]))  # no prefetch: store lookup
    assert again == earlier
    assert second.profiles.get("user", "u-1").n == 30
    rerun = replay(second, [parse_event(r) for r in _logins(40)])
    assert (rerun.events, rerun.duplicates) == (10, 30)
    assert store.counts()["decisions"] == 40
    assert second.profiles.get("user", "u-1").n == 40
