from __future__ import annotations

from vigil.profiles import MemoryProfileStore, Profile
from vigil.profiles.windows import CATEGORY_INDEX


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


def test_a_profile_saved_before_packed_arrays_reads_the_same() -> None:
    """Version 3 kept the windows' events and the sketches' buckets as msgpack lists."""
    import msgpack

    p = _busy_profile()
    state = p.to_state()
    windows = Profile.from_bytes(p.to_bytes()).windows
    oldest = windows._heads[-1]
    state[0] = 3
    state[9] = [
        windows._times[oldest:].tolist(),
        windows._cats[oldest:].tolist(),
        windows._amounts[oldest:].tolist(),
        *state[9][3:],
    ]
    state[11] = [[k, [q.count, q.zeros, list(q.bins.items())]] for k, q in p.quantiles.items()]
    old = msgpack.packb(state, use_bin_type=True)
    assert Profile.from_bytes(old).to_bytes() == p.to_bytes()


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
