"""Exact counts and amount sums over sliding event-time windows, per category.

Window convention (the offline feature builder uses the same one): read at event time ``t``,
the window of length ``W`` holds the events already added whose time ``s`` satisfies
``t - W < s <= t``. Amounts are kept in integer minor units (cents), so sums are exact and
removing an event that leaves the window never drifts.

>>> w = SlidingWindows()
>>> w.add(0.0, 0, 1500)
>>> w.add(1800.0, 0, 500)
>>> w.advance(3700.0)
>>> w.count(0, 0), w.total(0, 0), w.count(1, 0)   # 1 h window, 1 d window, category 0
(1, 500, 2)
"""

from __future__ import annotations

from array import array

from vigil.profiles.packed import pack, unpack

HOUR = 3600.0
DAY = 86400.0
WINDOWS: tuple[tuple[str, float], ...] = (
    ("1h", HOUR),
    ("1d", DAY),
    ("7d", 7 * DAY),
    ("30d", 30 * DAY),
    ("90d", 90 * DAY),
)
WINDOW_INDEX = {name: i for i, (name, _) in enumerate(WINDOWS)}
N_WINDOWS = len(WINDOWS)
# Categories: the five transaction types, logins and failed logins, then incoming transfers
# (money arriving from other accounts behaves nothing like money the customer sends, and
# mule accounts are recognised by it). "transfer" is outgoing. New categories go last so
# stored profiles keep their meaning.
CATEGORIES = (
    "withdrawal",
    "deposit",
    "transfer",
    "payment",
    "balance_inquiry",
    "login",
    "login_failed",
    "transfer_in",
)
CATEGORY_INDEX = {name: i for i, name in enumerate(CATEGORIES)}
N_CATEGORIES = len(CATEGORIES)


class SlidingWindows:
    """Counts and sums per (window, category), kept exact by evicting events as time advances.

    Events live once, in time order, in parallel lists; each window keeps the index of its
    oldest member. Lists are compacted when the longest window has moved past half of them.
    Events must be added in non-decreasing time; an earlier (late) event is clamped to the
    latest time seen, which keeps windows consistent at the cost of a slightly late eviction.

    The three lists are typed arrays, saved as raw bytes (:mod:`vigil.profiles.packed`): a
    busy terminal holds thousands of events over 90 days.

    >>> w = SlidingWindows(); w.add(10.0, 2, 700)
    >>> SlidingWindows.from_state(w.to_state()).total(4, 2)
    700
    """

    __slots__ = ("_amounts", "_cats", "_heads", "_times", "counts", "sums")

    def __init__(self) -> None:
        self._times = array("d")
        self._cats = array("b")
        self._amounts = array("q")  # cents; amounts are at most 1e12, far inside int64
        self._heads = [0] * N_WINDOWS
        self.counts = [0] * (N_WINDOWS * N_CATEGORIES)
        self.sums = [0] * (N_WINDOWS * N_CATEGORIES)

    def advance(self, now: float) -> None:
        """Evict events that are no longer within each window at time ``now``."""
        times = self._times
        n = len(times)
        if not n:
            return
        heads = self._heads
        cats = self._cats
        amounts = self._amounts
        counts = self.counts
        sums = self.sums
        for w in range(N_WINDOWS):
            head = heads[w]
            edge = now - WINDOWS[w][1]
            if head < n and times[head] <= edge:
                base = w * N_CATEGORIES
                while head < n and times[head] <= edge:
                    slot = base + cats[head]
                    counts[slot] -= 1
                    sums[slot] -= amounts[head]
                    head += 1
                heads[w] = head
        oldest = heads[-1]
        if oldest and oldest * 2 >= n:
            del times[:oldest], cats[:oldest], amounts[:oldest]
            self._heads = [h - oldest for h in heads]

    def add(self, when: float, category: int, amount: int = 0) -> None:
        """Add one event; call :meth:`advance` with the same time first."""
        times = self._times
        if times and when < times[-1]:
            when = times[-1]
        times.append(when)
        self._cats.append(category)
        self._amounts.append(amount)
        counts = self.counts
        sums = self.sums
        for w in range(N_WINDOWS):
            slot = w * N_CATEGORIES + category
            counts[slot] += 1
            sums[slot] += amount

    def count(self, window: int, category: int) -> int:
        return self.counts[window * N_CATEGORIES + category]

    def total(self, window: int, category: int) -> int:
        """Sum of amounts (minor units) of ``category`` in ``window``."""
        return self.sums[window * N_CATEGORIES + category]

    def to_state(self) -> list:
        oldest = self._heads[-1]
        return [
            pack(self._times[oldest:]),
            pack(self._cats[oldest:]),
            pack(self._amounts[oldest:]),
            [h - oldest for h in self._heads],
            self.counts,
            self.sums,
        ]

    @classmethod
    def from_state(cls, state: list) -> SlidingWindows:
        w = cls()
        w._times, w._cats, w._amounts = (unpack(t, s) for t, s in zip("dbq", state, strict=False))
        w._heads, w.counts, w.sums = (list(s) for s in state[3:])
        return w
