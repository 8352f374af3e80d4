"""Every profile statistic against a straightforward batch computation on random data."""

from __future__ import annotations

import math
import statistics

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.profiles.running import RunningStats
from vigil.profiles.seen import SeenValues
from vigil.profiles.sketch import QuantileSketch
from vigil.profiles.windows import N_CATEGORIES, TILES, WINDOWS, SlidingWindows

amounts = st.floats(min_value=0.01, max_value=1e7, allow_nan=False)
events = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=5_000.0),  # gap in minutes to the previous event
        st.integers(min_value=0, max_value=N_CATEGORIES - 1),
        st.integers(min_value=0, max_value=10**9),  # amount in cents
    ),
    min_size=1,
    max_size=200,
)


@given(st.lists(amounts, min_size=2, max_size=300))
def test_running_stats_match_batch(xs: list[float]) -> None:
    s = RunningStats()
    for x in xs:
        s.add(x)
    assert s.n == len(xs)
    assert math.isclose(s.mean, statistics.fmean(xs), rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(s.std, statistics.stdev(xs), rel_tol=1e-7, abs_tol=1e-6)
    assert (s.min, s.max) == (min(xs), max(xs))


@given(st.lists(amounts, min_size=2, max_size=100), st.lists(amounts, min_size=2, max_size=100))
def test_running_stats_merge_equals_one_pass(a: list[float], b: list[float]) -> None:
    left, right, both = RunningStats(), RunningStats(), RunningStats()
    for x in a:
        left.add(x)
        both.add(x)
    for x in b:
        right.add(x)
        both.add(x)
    left.merge(right)
    assert left.n == both.n
    assert math.isclose(left.mean, both.mean, rel_tol=1e-9)
    assert math.isclose(left.variance, both.variance, rel_tol=1e-6, abs_tol=1e-6)


@given(st.lists(amounts, min_size=1, max_size=500), st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_sketch_quantile_within_relative_error(xs: list[float], q: float) -> None:
    sketch = QuantileSketch()
    for x in xs:
        sketch.add(x)
    ordered = sorted(xs)
    # DDSketch returns the value of rank floor(q * (n - 1)) within alpha relative error.
    true = ordered[int(q * (len(xs) - 1))]
    assert abs(sketch.quantile(q) - true) <= sketch.alpha * true + 1e-12


@given(st.lists(amounts, max_size=200), st.lists(amounts, max_size=200))
def test_sketch_merge_equals_one_pass(a: list[float], b: list[float]) -> None:
    left, right, both = QuantileSketch(), QuantileSketch(), QuantileSketch()
    for x in a:
        left.add(x)
        both.add(x)
    for x in b:
        right.add(x)
        both.add(x)
    left.merge(right)
    assert left.to_state()[:2] == both.to_state()[:2]
    assert left.bins == both.bins


@settings(max_examples=200)
@given(events, st.integers(min_value=1, max_value=12))
def test_windows_match_batch(rows: list[tuple[float, int, int]], saved_every: int) -> None:
    # Saved and restored every few events too (a profile read from Redis or a checkpoint),
    # which must evict exactly as one that stayed in memory.
    w = SlidingWindows()
    history: list[tuple[float, int, int]] = []
    now = 0.0
    for i, (gap_minutes, category, cents) in enumerate(rows):
        now += gap_minutes * 60
        if i % saved_every == saved_every - 1:
            w = SlidingWindows.from_state(w.to_state())
        w.advance(now)
        # As read before the event: everything added earlier with edge < s <= t, the edge
        # being the window's length back from the start of the tile holding t: never more
        # than one tile older than t - W. Times compare in whole microseconds.
        t = round(now * 1e6)
        for wi, ((_, length), tile) in enumerate(zip(WINDOWS, TILES, strict=True)):
            w_us, tile_us = round(length * 1e6), round(tile * 1e6)
            edge = t // tile_us * tile_us - w_us
            assert t - w_us - tile_us < edge <= t - w_us
            for c in range(N_CATEGORIES):
                inside = [a for s, cat, a in history if cat == c and edge < round(s * 1e6) <= t]
                assert w.count(wi, c) == len(inside)
                assert w.total(wi, c) == sum(inside)
        w.add(now, category, cents)
        history.append((now, category, cents))
    restored = SlidingWindows.from_state(w.to_state())
    assert restored.counts == w.counts and restored.sums == w.sums


def test_windows_memory_is_bounded_by_the_longest_window() -> None:
    w = SlidingWindows()
    for day in range(1000):
        w.advance(day * 86400.0)
        w.add(day * 86400.0, 0, 100)
    assert w.count(4, 0) == 90
    # Saved: a tile per event each tier's longest window holds (1 h, 1 d, 7 d and 90 d).
    assert SlidingWindows.from_state(w.to_state()).entries == 1 + 1 + 7 + 90


def test_seen_values_keep_most_used_within_capacity() -> None:
    rng = np.random.default_rng(3)
    s = SeenValues(capacity=4)
    draws = rng.choice(
        ["NG", "GH", "US", "GB", "FR", "DE"], p=[0.6, 0.2, 0.1, 0.05, 0.03, 0.02], size=500
    )
    for i, v in enumerate(draws):
        s.add(str(v), float(i))
    assert len(s) == 4
    assert s.most_common(1)[0][0] == "NG"
    assert s.first_seen("NG") == float(list(draws).index("NG"))


def test_a_high_quantile_counted_from_the_top_is_the_one_counted_from_the_bottom() -> None:
    import random

    rng = random.Random(7)
    for trial in range(300):
        sketch = QuantileSketch()
        for _ in range(rng.randint(1, 60)):
            # amounts of every scale, repeats and zeros among them
            sketch.add(rng.choice([0.0, 12.5, round(rng.lognormvariate(4, 1.5), 2)]))
        for q in (0.0, 0.05, 0.5, 0.51, 0.9, 0.95, 0.99, 1.0):
            rank = q * (sketch.count - 1)
            assert sketch._walk_down(rank) == sketch._walk_up(rank), (trial, q)


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.sampled_from(["add", "remove", "merge", "ask"]), amounts), max_size=120)
)
def test_the_kept_bucket_order_follows_adds_removes_and_merges(
    steps: list[tuple[str, float]],
) -> None:
    sketch = QuantileSketch()
    for step, x in steps:
        if step == "add":
            sketch.add(x)
        elif step == "remove":
            sketch.remove(x)
        elif step == "merge":
            other = QuantileSketch()
            other.add(x)
            sketch.merge(other)
        else:
            sketch.quantile(0.95)  # the order is kept from the first quantile on
        # a sketch read back from its state has no kept order: it sorts afresh
        fresh = QuantileSketch.from_state(sketch.to_state())
        for q in (0.05, 0.5, 0.95, 0.99):
            assert sketch.quantile(q) == fresh.quantile(q) or sketch.count == 0
