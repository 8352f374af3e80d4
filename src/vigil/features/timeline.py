"""Exact windowed counts and sums for many entities at once: cumulative sums and binary search.

The rows of every entity sit in one array sorted by (entity code, replay order); replay order
is event-time order, so times are sorted within each entity too. One composite integer key,
``code * span + time``, is then sorted over the whole array, and "the entity's rows at or
before time t" is one ``np.searchsorted`` for many queries at once; a window's count or sum
is a difference of two cumulative sums. No Python loop; queries made in the rows' own order
are themselves sorted, which keeps the binary searches cache-friendly.

>>> import numpy as np
>>> line = Timeline(codes=np.array([0, 0, 0, 1]), times=np.array([10, 20, 30, 10]),
...                 values=np.array([1, 2, 4, 5]))
>>> line.count_le(np.array([0, 0, 1]), np.array([20, 9, 10])).tolist()
[2, 0, 1]
>>> line.sum_between(np.array([0]), np.array([10]), np.array([30]))   # 10 < s <= 30
(array([2]), array([6]))
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
_LIMIT = 2**62


class Timeline:
    """Rows (code, time, value) sorted by code then time, queried by entity code."""

    __slots__ = ("_cum", "_last_code", "_origin", "_span", "_times", "_values", "keys")

    def __init__(self, codes: Ints, times: Ints, values: Ints | None = None) -> None:
        n = len(codes)
        self._times: Ints | None = None
        # a query for an entity without rows (code -1, or past the last) moves next to the
        # rows: the same answer, and its key cannot overflow
        self._last_code = int(codes.max()) + 1 if n else 0
        if n:
            lo, hi = int(times.min()) - 1, int(times.max()) + 1
            self._origin, self._span = lo, hi - lo + 1
            if (self._last_code + 1) * self._span >= _LIMIT:
                # Too wide for one integer key: compare ranks among the distinct times instead.
                self._times = np.unique(times)
                self._origin, self._span = 0, len(self._times) + 1
        else:
            self._origin, self._span = 0, 1
        self.keys = self._key(codes, times, rows=True)
        if n and np.any(self.keys[1:] < self.keys[:-1]):
            raise ValueError("timestamp: rows must be sorted by entity, then time")
        # the cumulative sums only when a sum or count between two times is asked for
        self._values = values
        self._cum: Ints | None = None

    @property
    def cumulative(self) -> Ints:
        """The running sum of the values (of ones without values), from 0: ``n + 1`` long."""
        if self._cum is None:
            n = len(self.keys)
            cum = np.zeros(n + 1, np.int64)
            if self._values is None:
                cum[1:] = np.arange(1, n + 1)
            else:
                np.cumsum(self._values, out=cum[1:])
            self._cum = cum
        return self._cum

    def _key(self, codes: Ints, times: Ints, rows: bool = False) -> Ints:
        if not rows:
            codes = np.clip(codes, -1, self._last_code)
        if self._times is not None:
            times = np.searchsorted(self._times, times, side="right").astype(np.int64)
            key = codes.astype(np.int64) * self._span
            key += times
            return key
        # A query outside the rows' time range means the same as the range's edge, and
        # clipping keeps its key inside its own entity's range.
        key = codes.astype(np.int64) * self._span
        if rows:
            key += times
        else:
            key += np.clip(times, self._origin, self._origin + self._span - 1)
        key -= self._origin
        return key

    def position_le(self, codes: Ints, times: Ints) -> Ints:
        """Index just past the entity's last row with time <= ``times``."""
        return np.searchsorted(self.keys, self._key(codes, times), side="right")

    def window_edges(self, codes: Ints, width: int, tile: int = 1) -> Ints:
        """For rows given in the timeline's own order (``codes`` its codes): per row at time
        ``t``, the index of its entity's first row with time > ``floor(t / tile) * tile -
        width``, the edge of a window of ``width`` read in tiles of ``tile``
        (:mod:`vigil.profiles.windows`); the same as ``position_le(codes, edges)``, with fewer
        passes over the rows."""
        if self._times is not None:
            edges = self._row_times(codes) // tile * tile - width
            ranks = np.searchsorted(self._times, edges, side="right")
            key = codes * self._span
            key += ranks
            return np.searchsorted(self.keys, key, side="right")
        # the row's key at its window's edge, but not below its entity's own earliest key
        base = codes * self._span
        query = self.keys - base  # the row's time, less the origin
        query += self._origin
        query //= tile
        query *= tile
        query -= width + self._origin
        np.maximum(query, 0, out=query)
        query += base
        del base
        return np.searchsorted(self.keys, query, side="right")

    def _row_times(self, codes: Ints) -> Ints:
        return self._times[self.keys - codes * self._span - 1]  # type: ignore[index]

    def count_le(self, codes: Ints, times: Ints) -> Ints:
        """Rows of each entity with time <= ``times`` (the entity's whole past up to then)."""
        start = self._key(codes, np.full_like(times, np.iinfo(np.int64).min))
        return self.position_le(codes, times) - np.searchsorted(self.keys, start, side="right")

    def sum_between(self, codes: Ints, after: Ints, upto: Ints) -> tuple[Ints, Ints]:
        """(count, sum) of rows with ``after < time <= upto``."""
        lo = self.position_le(codes, after)
        hi = self.position_le(codes, upto)
        cum = self.cumulative
        return hi - lo, cum[hi] - cum[lo]
