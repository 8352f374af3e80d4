"""The recorder's filter of stored event ids: what lets a server skip the database for nearly
every new event, and must never skip it for an id it holds."""

from __future__ import annotations

from vigil.recorder import IdFilter


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
