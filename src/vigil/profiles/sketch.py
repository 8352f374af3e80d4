"""A mergeable quantile sketch with relative-error guarantees (DDSketch, Masson et al. 2019).

Every value ``x > 0`` falls in bucket ``ceil(log(x) / log(gamma))`` with
``gamma = (1 + alpha) / (1 - alpha)``; a quantile is answered with the bucket's midpoint, within
``alpha`` relative error of a true sample quantile. Two sketches merge by adding bucket counts,
so a profile recomputed in batch and one updated online agree. We keep our own ~60 lines rather
than the ``ddsketch`` package because profiles need a compact msgpack-able state and a cheap
per-event ``add`` on the hot path.

>>> q = QuantileSketch()
>>> for x in range(1, 1001):
...     q.add(float(x))
>>> abs(q.quantile(0.95) - 950) / 950 <= q.alpha
True
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, insort

from vigil.profiles.packed import pack, unpack

ALPHA = 0.01
_GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
# Values at or below this are counted as zero (balance inquiries, fee-free probes).
_MIN_VALUE = 1e-9
_MAX_NARROW = 2**32 - 1


class QuantileSketch:
    """Bucket counts of log-spaced values; ``quantile(q)`` within ``alpha`` relative error."""

    __slots__ = ("_cache", "_keys", "bins", "count", "zeros")
    alpha = ALPHA

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self._cache: dict[float, float] | None = None
        # The bucket keys in order, kept once asked for: a quantile is asked on every event
        # and each new value resets the cache, but new buckets are rare once a profile has
        # some history, so sorting the keys per quantile would be most of its cost.
        self._keys: list[int] | None = None

    def add(self, x: float) -> None:
        self.count += 1
        self._cache = None
        if x <= _MIN_VALUE:
            self.zeros += 1
            return
        key = math.ceil(math.log(x) / _LOG_GAMMA)
        bins = self.bins
        n = bins.get(key, 0)
        bins[key] = n + 1
        if not n and self._keys is not None:
            insort(self._keys, key)

    def remove(self, x: float) -> bool:
        """Take back one earlier :meth:`add` of ``x``: its bucket is a function of the value,
        so a sketch over values that change (a peer group's current means) stays exact.
        Returns False, changing nothing, when no value of that bucket is left to take.

        >>> q = QuantileSketch(); q.add(5.0); q.add(900.0)
        >>> q.remove(900.0), q.remove(900.0), q.count, round(q.quantile(1.0), 1)
        (True, False, 1, 5.0)
        """
        if x <= _MIN_VALUE:
            if self.zeros <= 0:
                return False
            self.zeros -= 1
        else:
            key = math.ceil(math.log(x) / _LOG_GAMMA)
            n = self.bins.get(key, 0)
            if n <= 0:
                return False
            if n == 1:
                del self.bins[key]
                if self._keys is not None:
                    del self._keys[bisect_left(self._keys, key)]
            else:
                self.bins[key] = n - 1
        self.count -= 1
        self._cache = None
        return True

    def quantile(self, q: float) -> float:
        """The value below which a share ``q`` of the values fall (nan when empty)."""
        if self.count == 0:
            return math.nan
        cache = self._cache
        if cache is None:
            cache = self._cache = {}
        elif q in cache:
            return cache[q]
        rank = q * (self.count - 1)
        cache[q] = value = self._walk_down(rank) if q > 0.5 else self._walk_up(rank)
        return value

    def _walk_up(self, rank: float) -> float:
        """The bucket holding ``rank``, counted from the lowest."""
        seen = self.zeros
        if seen > rank:
            return 0.0
        bins = self.bins
        for key in self._sorted_keys():
            seen += bins[key]
            if seen > rank:
                return 2 * _GAMMA**key / (_GAMMA + 1)
        return 0.0

    def _walk_down(self, rank: float) -> float:
        """The same bucket, counted from the top: a high quantile (p95, p99, asked on every
        event, and the cache is reset by each new value) passes only the buckets above it."""
        bins = self.bins
        seen = self.zeros + sum(bins.values())  # the walk up's count past every bucket
        if self.zeros > rank or seen <= rank:
            return 0.0
        found = 0
        for key in reversed(self._sorted_keys()):
            if seen <= rank:
                break
            found = key  # the walk up is past rank here: the lowest such bucket is it
            seen -= bins[key]
        return 2 * _GAMMA**found / (_GAMMA + 1)

    def _sorted_keys(self) -> list[int]:
        keys = self._keys
        if keys is None:
            keys = self._keys = sorted(self.bins)
        return keys

    def merge(self, other: QuantileSketch) -> None:
        for key, n in other.bins.items():
            self.bins[key] = self.bins.get(key, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self._cache = None
        self._keys = None

    def to_state(self) -> list:
        bins = self.bins
        # Counts take four bytes while they fit (always, but in a sketch of billions).
        wide = bins and max(bins.values()) > _MAX_NARROW
        counts = array("q" if wide else "I", bins.values())
        return [self.count, self.zeros, pack(array("i", bins)), pack(counts)]

    @classmethod
    def from_state(cls, state: list) -> QuantileSketch:
        s = cls()
        s.count, s.zeros = state[0], state[1]
        if len(state) == 4:  # the bucket keys and counts, packed; the counts' width tells
            keys = unpack("i", state[2])
            wide = keys and len(state[3]) == 8 * len(keys)
            s.bins = dict(zip(keys, unpack("q" if wide else "I", state[3]), strict=True))
        else:  # saved before profile version 4: (key, count) pairs
            s.bins = {int(k): int(v) for k, v in state[2]}
        return s
