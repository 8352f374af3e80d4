from __future__ import annotations

from array import array

import pytest

from vigil.profiles import MemoryProfileStore, Profile
from vigil.profiles.windows import CATEGORY_INDEX, SlidingWindows


def _busy_profile() -> Profile:
    p = Profile()
    for i in range(200):
        t = i * 3600.0 * 7
        p.advance(t)
        p.record_transaction(
            t,
            t + 240,
            i % 5,
            100_000 + 37 * i,
            place=f"ATM-{i % 9}",
            latitude=6.4 + i * 1e-3,
            longitude=3.3,
            attributes=(("terminal", f"ATM-{i % 9}"), ("country", "NG")),
            transaction_id=f"t{i}",
        )
        p.record_login(
            t + 100,
            i % 13 != 0,
            latitude=None,
            longitude=None,
            place=None,
            attributes=(("device", f"d{i % 3}"),),
        )
    p.record_start("open-1", 1e9, "ATM-1", 6.4, 3.3)
    return p


def test_profile_round_trips_exactly() -> None:
    p = _busy_profile()
    data = p.to_bytes()
    q = Profile.from_bytes(data)
    assert q.to_bytes() == data
    assert q.windows.counts == p.windows.counts
    assert q.amount_stats(0).mean == p.amount_stats(0).mean
    assert q.amount_quantile(0, 0.95) == p.amount_quantile(0, 0.95)
    assert q.open == p.open
    assert q.has_seen("terminal", "ATM-3") and not q.has_seen("terminal", "ATM-99")


def test_profile_is_compact() -> None:
    # A card with 200 transactions over two months keeps its 90-day window and statistics in
    # a few KB (the windows' 400 events as fixed-width arrays, 17 bytes each: raw bytes are
    # ten times faster to save and restore than msgpack lists, and 25 % larger); the figure
    # is printed by bench/engine.py as bytes per profile.
    assert len(_busy_profile().to_bytes()) < 8500


def test_failed_logins_do_not_make_a_device_familiar() -> None:
    p = Profile()
    p.record_login(
        0.0, False, latitude=None, longitude=None, place=None, attributes=(("device", "attacker"),)
    )
    assert not p.has_seen("device", "attacker")
    assert p.windows.count(0, CATEGORY_INDEX["login_failed"]) == 1


def test_memory_store_get_put_and_snapshot(tmp_path) -> None:
    from vigil.storage import Store

    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    store.init_schema()
    profiles = MemoryProfileStore()
    p = _busy_profile()
    profiles.put("card", "c-1", p)
    assert profiles.get("card", "c-1") is p
    assert profiles.get("card", "c-2").n == 0 and len(profiles) == 1
    assert profiles.snapshot(store) == 1
    restored = MemoryProfileStore()
    assert restored.restore(store) == {"position": 0}  # the log is empty
    assert restored.get("card", "c-1").to_bytes() == p.to_bytes()


@pytest.mark.parametrize("version", [3, 4])
def test_a_profile_saved_with_every_event_reads_them_into_tiles(version: int) -> None:
    """Versions 3 and 4 kept every event of the longest window (3 as msgpack lists, with the
    sketches' buckets as lists too); read now, the events are added again into tiles."""
    import msgpack

    from vigil.profiles.packed import pack

    p = _busy_profile()
    events = [(i * 3600.0 * 7 + 240, i % 5, 100_000 + 37 * i) for i in range(200)]
    tiled = SlidingWindows()
    for when, category, amount in events:
        tiled.add(when, category, amount)
    tiled.advance(events[-1][0])
    columns = [
        array(code, column) for code, column in zip("dbq", zip(*events, strict=True), strict=True)
    ]
    state = p.to_state()
    state[0] = version
    state[9] = [
        *(c.tolist() if version == 3 else pack(c) for c in columns),
        [0] * 5,  # the old heads and totals: recomputed from the events
        [0] * 40,
        [0] * 40,
    ]
    if version == 3:
        state[11] = [[k, [q.count, q.zeros, list(q.bins.items())]] for k, q in p.quantiles.items()]
    read = Profile.from_bytes(msgpack.packb(state, use_bin_type=True))
    assert read.windows.counts == tiled.counts and read.windows.sums == tiled.sums
    assert read.windows.count(4, 0) == sum(1 for e in events if e[1] == 0) > 0
    assert read.to_state()[10:] == p.to_state()[10:]


def test_a_busy_terminal_is_no_bigger_than_a_quiet_one() -> None:
    """The windows keep tiles, not events: ten times the traffic over 90 days (an event a
    minute against one every ten) fills the same tiles a little fuller, not ten times the
    size."""

    def terminal(every_minutes: int) -> Profile:
        p = Profile()
        for n, minute in enumerate(range(0, 90 * 1440, every_minutes)):
            t = minute * 60.0
            p.advance(t)
            p.record_transaction(
                t,
                t + 30,
                n % 2,
                10_000 + minute % 997,
                place="ATM-1",
                latitude=6.4,
                longitude=3.3,
                attributes=(("card", f"c-{minute % 50}"),),
            )
        return p

    quiet, busy = terminal(10), terminal(1)
    assert busy.windows.count(4, 0) == 10 * quiet.windows.count(4, 0) > 6000
    # At most 286 tiles per category (vigil.profiles.windows), of the two used here.
    assert Profile.from_bytes(busy.to_bytes()).windows.entries <= 2 * 286
    assert len(busy.to_bytes()) < 1.2 * len(quiet.to_bytes())


def test_a_sketch_with_counts_past_four_bytes_round_trips() -> None:
    from vigil.profiles.sketch import QuantileSketch

    q = QuantileSketch()
    for x in (5.0, 5.0, 900.0):
        q.add(x)
    narrow = QuantileSketch.from_state(q.to_state())
    q.bins[max(q.bins)] = 2**40
    wide = QuantileSketch.from_state(q.to_state())
    assert narrow.bins == {k: v for k, v in q.bins.items() if v < 2**40} | {max(q.bins): 1}
    assert wide.bins == q.bins
