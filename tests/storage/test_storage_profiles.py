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


def test_a_checkpoint_written_in_parts_counts_only_once_complete(store: Store) -> None:
    """A server writes a checkpoint in parts, one transaction each: until its last part (with
    its log position) is written, a load reads the profiles of the checkpoint before."""
    store.save_checkpoint_part([("card", "c-1", b"c1@5"), ("card", "c-2", b"c2@5")], 5)
    store.save_checkpoint_part([("card", "c-3", b"c3@5")], 5, complete=True)
    at_5 = [("card", "c-1", b"c1@5"), ("card", "c-2", b"c2@5"), ("card", "c-3", b"c3@5")]
    assert list(store.load_profiles()) == at_5
    # The checkpoint at 9 is cut off after its first part (the server died): not read.
    store.save_checkpoint_part([("card", "c-1", b"c1@9"), ("card", "c-4", b"c4@9")], 9)
    assert list(store.load_profiles()) == at_5
    assert store.load_profile_state() == {"position": 5}
    # The next checkpoint writes over what that one left, and completes.
    store.save_checkpoint_part([("card", "c-2", b"c2@12")], 12)
    store.save_checkpoint_part([("card", "c-4", b"c4@12")], 12, complete=True)
    assert list(store.load_profiles()) == [
        ("card", "c-1", b"c1@5"),  # 9's was never complete
        ("card", "c-2", b"c2@12"),
        ("card", "c-3", b"c3@5"),
        ("card", "c-4", b"c4@12"),
    ]
    # A part of the checkpoint after keeps each profile of 12 current until it completes.
    store.save_checkpoint_part([("card", "c-2", b"c2@20"), ("card", "c-4", b"c4@20")], 20)
    assert dict(((k, key), d) for k, key, d in store.load_profiles())[("card", "c-2")] == b"c2@12"
    assert store.load_profile_state() == {"position": 12}


def test_profiles_saved_at_once_replace_a_checkpoint_part(store: Store) -> None:
    store.save_checkpoint_part([("card", "c-1", b"old")], 3, complete=True)
    store.save_profiles([("card", "c-1", b"now")], {"position": 4})
    store.save_checkpoint_part([("card", "c-2", b"x")], 7)  # the part finds c-1 current
    assert list(store.load_profiles()) == [("card", "c-1", b"now")]
