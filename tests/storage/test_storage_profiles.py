"""Profile snapshots: upserted rows and the watermark state saved with them."""

from __future__ import annotations

import pytest

from vigil.storage import Store


def test_profiles_save_load_and_state(store: Store) -> None:
    assert list(store.load_profiles()) == []
    assert store.load_profile_state() is None
    rows = [("card", "c-1", b"\x00\x01card"), ("user", "u-1", b"user"), ("card", "c-0", b"")]
    state = {"watermark": "2022-01-31T23:59:59Z", "events": 3}
    assert store.save_profiles(iter(rows), state) == 3
    assert list(store.load_profiles()) == sorted(rows)
    assert store.load_profile_state() == state

    later = [("card", "c-1", b"updated"), ("device", "d-1", bytes(range(256)))]
    assert store.save_profiles(later, {"watermark": "2022-02-28T00:00:00Z", "events": 9}) == 2
    loaded = {(k, key): data for k, key, data in store.load_profiles()}
    assert loaded == {
        ("card", "c-0"): b"",
        ("card", "c-1"): b"updated",
        ("device", "d-1"): bytes(range(256)),
        ("user", "u-1"): b"user",
    }
    assert store.load_profile_state() == {"watermark": "2022-02-28T00:00:00Z", "events": 9}
    assert store.counts()["profiles"] == 4


def test_profiles_saved_in_many_chunks(store: Store) -> None:
    rows = (("card", f"c-{i:05d}", i.to_bytes(4, "big")) for i in range(12_001))
    assert store.save_profiles(rows) == 12_001
    loaded = list(store.load_profiles())
    assert len(loaded) == 12_001 and loaded[-1] == ("card", "c-12000", (12_000).to_bytes(4, "big"))
    assert store.load_profile_state() is None


def test_a_bad_profile_row_writes_nothing(store: Store) -> None:
    with pytest.raises(TypeError, match="data: expected bytes for card/c-2"):
        store.save_profiles([("card", "c-1", b"ok"), ("card", "c-2", "not bytes")], {"w": 1})
    assert list(store.load_profiles()) == []
    assert store.load_profile_state() is None
