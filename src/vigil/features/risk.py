"""Terminal risk measured with a label delay: what share of a terminal's transactions were fraud.

A label is only known some time after its transaction (the customer calls, settlement
arrives). With delay ``d`` the risk at time ``t`` over window ``W`` looks at the transactions
with time ``s`` in ``(t - d - W, t - d]`` and counts those whose fraud label is known by ``t``
(``known_at <= t``): a label that arrives later never leaks into an earlier feature.

The profiles keep no labels, so this small state sits beside them, owned by the engine: feed
it every decided event (``observe``: completed transactions at a terminal count) and every
label as it arrives (``learn``: a ``fraud`` feedback on a transaction it saw counts from the
feedback's own time). The lower-level ``add_transaction`` / ``add_label`` take the terminal and
times directly. Offline, :func:`vigil.features.transaction_features` applies the same rule to
labels with a ``known_at`` column (and to labels without one as known one delay after the
transaction, the earliest any counts).

>>> risk = TerminalRisk(label_delay=7 * 86400.0)
>>> for day in range(4):
...     risk.add_transaction("ATM-1", day * 86400.0)
>>> risk.add_label("ATM-1", 1 * 86400.0, known_at=8 * 86400.0)
>>> risk.add_label("ATM-1", 2 * 86400.0, known_at=12 * 86400.0)
>>> risk.rate("ATM-1", 10 * 86400.0, 7 * 86400.0)  # 4 transactions in (-4 d, 3 d], 1 label known
0.25
>>> risk.rate("ATM-1", 12 * 86400.0, 7 * 86400.0)  # now the second label is known too
0.5

Fed from the engine's own events and feedback, a label counts from its arrival:

>>> from datetime import datetime, UTC
>>> from vigil.domain import Feedback, Transaction
>>> risk = TerminalRisk(label_delay=86400.0)
>>> risk.observe(Transaction(event_id="e-1", transaction_id="t-1", type="withdrawal",
...     amount="50", card_id="c-1", terminal_id="ATM-1",
...     timestamp=datetime(2022, 1, 1, tzinfo=UTC)))
>>> risk.learn(Feedback(event_id="f-1", target_event_id="e-1", label="fraud",
...                     timestamp=datetime(2022, 1, 5, tzinfo=UTC)))
True
>>> day = 86400.0; jan = datetime(2022, 1, 1, tzinfo=UTC).timestamp()
>>> risk.rate("ATM-1", jan + 3 * day, 7 * day), risk.rate("ATM-1", jan + 4 * day, 7 * day)
(0.0, 1.0)
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from vigil.domain.events import Feedback, FeedbackLabel

_MAX_WINDOW = 30 * 86400.0


class TerminalRisk:
    """Per terminal: completed transaction times and known fraud labels, evicted by age."""

    __slots__ = ("_frauds", "_seen", "_seen_order", "_times", "label_delay", "max_window")

    def __init__(self, label_delay: float, max_window: float = _MAX_WINDOW) -> None:
        if not label_delay > 0:
            raise ValueError("label_delay: must be positive (a zero delay leaks labels)")
        self.label_delay = float(label_delay)
        self.max_window = max_window
        self._times: dict[str, list[float]] = {}
        # terminal → [(event time, known at)] sorted by event time
        self._frauds: dict[str, list[tuple[float, float]]] = {}
        # event id → (terminal, time) of the transactions a label may still name, oldest first
        self._seen: dict[str, tuple[str, float]] = {}
        self._seen_order: deque[tuple[float, str]] = deque()

    def add_transaction(self, terminal_id: str, when: float, event_id: str | None = None) -> None:
        """A completed transaction at ``when`` (epoch seconds, non-decreasing per terminal);
        with ``event_id``, a later :meth:`label_event` can name it."""
        times = self._times.setdefault(terminal_id, [])
        times.append(when)
        # Evict once the oldest half can never be read again (reads look back d + max window).
        edge = when - self.label_delay - self.max_window
        if times[0] <= edge and times[len(times) // 2] <= edge:
            del times[: bisect_right(times, edge)]
            frauds = self._frauds.get(terminal_id)
            if frauds:
                del frauds[: bisect_right(frauds, (edge, math.inf))]
        if event_id is not None:
            self._seen[event_id] = (terminal_id, when)
            order = self._seen_order
            order.append((when, event_id))
            # A label on a transaction older than every window's reach changes no feature.
            while order[0][0] <= edge:
                self._seen.pop(order.popleft()[1], None)

    def label_event(self, event_id: str, known_at: float) -> bool:
        """A fraud label on the transaction ``event_id`` (added with its id), known from
        ``known_at``; False when it is not one (unknown, too old, or labelled already)."""
        found = self._seen.pop(event_id, None)
        if found is None:
            return False
        self.add_label(found[0], found[1], known_at)
        return True

    def observe(self, event: Any) -> None:
        """A decided event: a completed transaction at a terminal counts toward its rate."""
        terminal = getattr(event, "terminal_id", None)
        if terminal is not None and getattr(event, "phase", "start") != "start":
            self.add_transaction(terminal, event.timestamp.timestamp(), event.event_id)

    def learn(self, feedback: Feedback) -> bool:
        """Feedback as it arrives: a ``fraud`` label on a completed transaction observed counts
        from the feedback's time; other labels, and labels on other events, change nothing."""
        if feedback.label is not FeedbackLabel.FRAUD:
            return False
        return self.label_event(feedback.target_event_id, feedback.timestamp.timestamp())

    def restore(
        self,
        transactions: Iterable[tuple[datetime, str, str]],
        labels: Iterable[tuple[datetime, str]],
    ) -> int:
        """Rebuild from history, as if it had been observed and learnt live: completed
        transactions ``(time, event_id, terminal_id)`` and fraud labels ``(known at,
        target_event_id)``, each in time order (:meth:`vigil.storage.Store.terminal_history`).
        A label on a transaction not among them counts nothing. Returns the labels counted.

        >>> from datetime import datetime, UTC
        >>> day = lambda d: datetime(2022, 1, d, tzinfo=UTC)
        >>> risk = TerminalRisk(label_delay=86400.0)
        >>> risk.restore([(day(1), "e-1", "ATM-1"), (day(2), "e-2", "ATM-1")], [(day(3), "e-2")])
        1
        >>> risk.rate("ATM-1", day(4).timestamp(), 7 * 86400.0)
        0.5
        """
        # A transaction comes before a label of the same instant, as a live engine sees them.
        merged = heapq.merge(
            ((t, 0, event_id, terminal) for t, event_id, terminal in transactions),
            ((t, 1, event_id, None) for t, event_id in labels),
            key=lambda item: item[:2],
        )
        counted = 0
        for when, is_label, event_id, terminal in merged:
            if is_label:
                counted += self.label_event(event_id, when.timestamp())
            else:
                self.add_transaction(terminal, when.timestamp(), event_id)
        return counted

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
