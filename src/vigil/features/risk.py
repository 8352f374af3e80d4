"""Terminal risk measured with a label delay: what share of a terminal's transactions were fraud.

A label is only known some time after its transaction (the customer calls, settlement
arrives). With delay ``d`` the risk at time ``t`` over window ``W`` looks at the transactions
with time ``s`` in ``(t - d - W, t - d]`` and counts those whose fraud label is known by ``t``
(``known_at <= t``): a label that arrives later never leaks into an earlier feature.

The profiles keep no labels, so this small state sits beside them: feed it every completed
transaction (``add_transaction``, after the engine decided it) and every fraud label when it
becomes known (``add_label``).

>>> risk = TerminalRisk(label_delay=7 * 86400.0)
>>> for day in range(4):
...     risk.add_transaction("ATM-1", day * 86400.0)
>>> risk.add_label("ATM-1", 1 * 86400.0, known_at=8 * 86400.0)
>>> risk.add_label("ATM-1", 2 * 86400.0, known_at=12 * 86400.0)
>>> risk.rate("ATM-1", 10 * 86400.0, 7 * 86400.0)  # 4 transactions in (-4 d, 3 d], 1 label known
0.25
>>> risk.rate("ATM-1", 12 * 86400.0, 7 * 86400.0)  # now the second label is known too
0.5
"""

from __future__ import annotations

import math
from bisect import bisect_right

_MAX_WINDOW = 30 * 86400.0


class TerminalRisk:
    """Per terminal: completed transaction times and known fraud labels, evicted by age."""

    __slots__ = ("_frauds", "_times", "label_delay", "max_window")

    def __init__(self, label_delay: float, max_window: float = _MAX_WINDOW) -> None:
        if not label_delay > 0:
            raise ValueError("label_delay: must be positive (a zero delay leaks labels)")
        self.label_delay = float(label_delay)
        self.max_window = max_window
        self._times: dict[str, list[float]] = {}
        # terminal → [(event time, known at)] sorted by event time
        self._frauds: dict[str, list[tuple[float, float]]] = {}

    def add_transaction(self, terminal_id: str, when: float) -> None:
        """A completed transaction at ``when`` (epoch seconds, non-decreasing per terminal)."""
        times = self._times.setdefault(terminal_id, [])
        times.append(when)
        # Evict once the oldest half can never be read again (reads look back d + max window).
        edge = when - self.label_delay - self.max_window
        if times[0] <= edge and times[len(times) // 2] <= edge:
            del times[: bisect_right(times, edge)]

    def add_label(self, terminal_id: str, event_time: float, known_at: float) -> None:
        """A fraud label on the transaction at ``event_time``, known from ``known_at``."""
        frauds = self._frauds.setdefault(terminal_id, [])
        entry = (event_time, known_at)
        if not frauds or frauds[-1] <= entry:
            frauds.append(entry)
        else:
            frauds.insert(bisect_right(frauds, entry), entry)

    def counts(self, terminal_id: str, now: float, window: float) -> tuple[int, int]:
        """(transactions, known frauds) in ``(now - d - window, now - d]``."""
        hi = now - self.label_delay
        lo = hi - window
        times = self._times.get(terminal_id)
        if not times:
            return 0, 0
        n = bisect_right(times, hi) - bisect_right(times, lo)
        frauds = self._frauds.get(terminal_id)
        if not frauds or not n:
            return n, 0
        first = bisect_right(frauds, (lo, math.inf))
        last = bisect_right(frauds, (hi, math.inf))
        known = sum(1 for _, at in frauds[first:last] if at <= now)
        return n, known

    def rate(self, terminal_id: str, now: float, window: float) -> float:
        """Known-fraud share of the window's transactions; NaN when it holds none."""
        n, frauds = self.counts(terminal_id, now, window)
        return frauds / n if n else math.nan
