"""Running mean, standard deviation, minimum and maximum of a stream (Welford's algorithm).

>>> s = RunningStats()
>>> for x in (2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0):
...     s.add(x)
>>> s.n, s.mean, round(s.std, 6), s.min, s.max
(8, 5.0, 2.13809, 2.0, 9.0)
"""

from __future__ import annotations

import math


class RunningStats:
    """Welford's online moments: numerically stable, O(1) per value, mergeable."""

    __slots__ = ("m2", "max", "mean", "min", "n")

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, x: float) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)
        if x < self.min:
            self.min = x
        if x > self.max:
            self.max = x

    @property
    def variance(self) -> float:
        """Sample variance (n - 1 in the denominator); 0 until two values are seen."""
        return self.m2 / (self.n - 1) if self.n > 1 else 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    def merge(self, other: RunningStats) -> None:
        """Combine with another stream's statistics (Chan et al.)."""
        if other.n == 0:
            return
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean += delta * other.n / n
        self.m2 += other.m2 + delta * delta * self.n * other.n / n
        self.n = n
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def to_state(self) -> list:
        return [self.n, self.mean, self.m2, self.min, self.max]

    @classmethod
    def from_state(cls, state: list) -> RunningStats:
        s = cls()
        s.n, s.mean, s.m2, s.min, s.max = state
        return s
