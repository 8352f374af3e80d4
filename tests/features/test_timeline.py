"""Timeline against brute force, on random data with ties and far queries."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.features.timeline import Timeline

rows = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(-5, 9)), max_size=40)
queries = st.lists(st.tuples(st.integers(-1, 4), st.integers(-60, 60), st.integers(0, 50)))


def _sorted(data: list[tuple[int, int, int]], scale: int):
    data = sorted(data, key=lambda r: (r[0], r[1]))
    codes = np.array([r[0] for r in data], dtype=np.int64)
    times = np.array([r[1] * scale for r in data], dtype=np.int64)
    values = np.array([r[2] for r in data], dtype=np.int64)
    return data, codes, times, values


@settings(max_examples=400, deadline=None)
@given(rows, queries, st.sampled_from([1, 2**56]))
def test_counts_and_sums_match_brute_force(data, asks, scale):
    # scale 2**56 makes (code, time) too wide for one integer key: the rank fallback
    data, codes, times, values = _sorted(data, scale)
    line = Timeline(codes, times, values)
    for code, t, width in asks:
        after, upto = (t - width) * scale, t * scale
        c = np.array([code])
        count, total = line.sum_between(c, np.array([after]), np.array([upto]))
        inside = [v for k, s, v in data if k == code and after < s * scale <= upto]
        assert (count[0], total[0]) == (len(inside), sum(inside))
        past = sum(1 for k, s, _ in data if k == code and s * scale <= upto)
        assert line.count_le(c, np.array([upto]))[0] == past


def test_rows_out_of_order_are_refused():
    import pytest

    with pytest.raises(ValueError, match="timestamp"):
        Timeline(np.array([0, 0]), np.array([5, 3]))


@settings(max_examples=300, deadline=None)
@given(rows, st.integers(1, 50), st.integers(1, 7), st.sampled_from([1, 2**56]))
def test_window_edges_are_the_positions_of_each_rows_window_start(data, width, tile, scale):
    # scale 2**56: the rank fallback; the edge is the first row after the window's edge,
    # ``floor(time / tile) * tile - width`` (vigil.profiles.windows)
    data, codes, times, _ = _sorted(data, scale)
    line = Timeline(codes, times)
    edges = line.window_edges(codes, width * scale, tile * scale)
    start = times // (tile * scale) * (tile * scale) - width * scale
    assert edges.tolist() == line.position_le(codes, start).tolist()
    for i, (code, s, _) in enumerate(data):
        first = next(
            j
            for j, (k, t, _) in enumerate(data)
            if k == code
            and t * scale > (s * scale) // (tile * scale) * (tile * scale) - width * scale
        )
        assert edges[i] == first
