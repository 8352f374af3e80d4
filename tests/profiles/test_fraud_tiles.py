"""A terminal's fraud tiles against brute force: the tiled window rule, in any order of
arrival (events and labels applied by several processes), and bounded whatever the traffic."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.profiles.fraud import LABEL_DELAY_MAX, TILES, WINDOWS, FraudTiles

HOUR = 3600.0


def _brute(times: list[float], fraud: set[int], window: int, now: float, delay: float):
    tile, width = TILES[window], WINDOWS[window]
    end = math.floor(round((now - delay) * 1e6) / round(tile * 1e6)) * tile
    inside = [i for i, s in enumerate(times) if end - width < s <= end]
    return len(inside), sum(1 for i in inside if i in fraud)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 60 * 24 * HOUR, allow_nan=False), min_size=1, max_size=60),
    st.sets(st.integers(0, 59)),
    st.floats(60.0, LABEL_DELAY_MAX),
    st.floats(0, 3 * 24 * HOUR),
    st.randoms(use_true_random=False),
)
def test_counts_follow_the_tiled_window_rule_in_any_order(times, labelled, delay, later, rng):
    times = [round(t, 3) for t in times]
    fraud = {i for i in labelled if i < len(times)}
    # events and their labels in any order (a label after its transaction), as processes
    # sharing the profile apply them
    steps = [("tx", i) for i in range(len(times))]
    rng.shuffle(steps)
    for i in sorted(fraud, key=lambda _: rng.random()):
        steps.insert(rng.randint(steps.index(("tx", i)) + 1, len(steps)), ("label", i))
    tiles = FraudTiles()
    for kind, i in steps:
        if kind == "tx":
            tiles.add(times[i])
        else:
            tiles.label(times[i])
    now = max(times) + later
    for window in range(len(WINDOWS)):
        assert tiles.counts(window, now, delay) == _brute(times, fraud, window, now, delay)
    assert FraudTiles.from_state(tiles.to_state()).counts(2, now, delay) == tiles.counts(
        2, now, delay
    )


def test_a_busy_terminal_keeps_a_bounded_number_of_tiles():
    tiles = FraudTiles()
    rng = random.Random(1)
    for n in range(90 * 24 * 60):  # a transaction a minute for 90 days
        tiles.add(n * 60.0)
        if rng.random() < 0.01:
            tiles.label(n * 60.0)
    assert tiles.entries <= 291
    n, frauds = tiles.counts(2, 90 * 86400.0, 7 * 86400.0)
    assert n == 30 * 24 * 60 and 0 < frauds < n


def test_a_label_on_a_transaction_no_read_can_reach_counts_nothing():
    tiles = FraudTiles()
    tiles.add(0.0)
    tiles.add(60 * 86400.0)  # 60 days later: the first is beyond every window and delay
    assert tiles.label(0.0) is False
    assert tiles.label(60 * 86400.0) is True
