"""Counts and amount sums over sliding event-time windows, per category, kept in time tiles.

A window is read as whole tiles (Chronon's "sawtooth" windows): the 1 h window in 5-minute
tiles, the 1 d window in 15-minute tiles (a daily limit must hardly count yesterday's
withdrawals), the 7 d window in 2-hour tiles, the 30 and 90 d windows in day tiles. A profile then
keeps at most one entry per tile and category, whatever the traffic: a terminal that sees
thousands of events a day is as small as one that sees ten, and reading and writing it (a
shared profile is both, on every event) costs the same.

Window convention (the offline feature builder uses the same one, :mod:`vigil.features`): read
at event time ``t``, the window of length ``W`` and tile ``h`` holds the events already added
whose time ``s`` satisfies ``edge(t) < s <= t``, where ``edge(t) = floor(t / h) * h - W``.
Times are whole microseconds. So a window is never shorter than ``W``, and at most one tile
longer: the edge error is at most 5 minutes for 1 h, 15 minutes for 1 d, 2 hours for 7 d and
1 day for 30 and 90 d, always by counting events older than ``W``, never by missing recent ones.
A profile keeps at most 286 tile entries per category (13 + 97 + 85 + 91), 17 bytes each.
Amounts are kept in integer minor units (cents), so sums are exact and removing a tile never
drifts.

>>> w = SlidingWindows()
>>> w.add(0.0, 0, 1500)
>>> w.add(1800.0, 0, 500)
>>> w.advance(3700.0)   # the 1 h window's edge: 3600 - 3600 = 0, so only the second is in it
>>> w.count(0, 0), w.total(0, 0), w.count(1, 0)   # 1 h window, 1 d window, category 0
(1, 500, 2)
>>> w.edge(0, 3700.0), w.edge(1, 3700.0)
(0.0, -82800.0)
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
# The tile each window is read in (seconds): the bound on its edge error.
TILES: tuple[float, ...] = (300.0, 900.0, 2 * HOUR, DAY, DAY)
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

US = 1_000_000
# The distinct tile lengths (µs), each a tier of tiles shared by the windows read in it.
_TIER_US = tuple(sorted({round(h * US) for h in TILES}))
_TIER = tuple(_TIER_US.index(round(h * US)) for h in TILES)  # window -> its tier
_SPAN = tuple(round(seconds / h) for (_, seconds), h in zip(WINDOWS, TILES, strict=True))
_TIER_WINDOWS = tuple(
    tuple(w for w in range(N_WINDOWS) if _TIER[w] == t) for t in range(len(_TIER_US))
)


def to_us(when: float) -> int:
    """A time in seconds as the whole microseconds windows compare (the offline builder's)."""
    return round(when * US)


def tile_of(when_us: int, tile_us: int) -> int:
    """The tile holding time ``when_us``: tile ``j`` holds ``(j - 1) * h < s <= j * h``."""
    return -(-when_us // tile_us)


def edge_us(window: int, now_us: int) -> int:
    """The window's edge read at ``now_us``: it holds the events after it, up to now."""
    tile = _TIER_US[_TIER[window]]
    return (now_us // tile - _SPAN[window]) * tile


class SlidingWindows:
    """Counts and sums per (window, category), from tiles evicted whole as time advances.

    Each tier (tile length) keeps its tiles once, in time order, in parallel typed arrays of
    (tile, category, count, cents), one entry per tile and category; each window keeps the
    index of its oldest entry. A tier is compacted when its longest window has moved past half
    of it. Events must be added in non-decreasing time; an earlier (late) event is clamped to
    the latest time seen, which keeps windows consistent at the cost of a slightly late
    eviction. The arrays are saved as raw bytes (:mod:`vigil.profiles.packed`).

    >>> w = SlidingWindows()
    >>> for minute in range(10_000):   # a busy terminal: an event a minute for a week
    ...     w.advance(minute * 60.0); w.add(minute * 60.0, 0, 100)
    >>> w.count(2, 0), w.entries   # every event in the 7 d window, in a bounded number of tiles
    (10000, 302)
    >>> SlidingWindows.from_state(w.to_state()).total(4, 0)
    1000000
    """

    __slots__ = ("_cats", "_cents", "_counts", "_heads", "_last", "_tiles", "counts", "sums")

    def __init__(self) -> None:
        tiers = range(len(_TIER_US))
        # 5-minute tiles since 1970 stay below 2**31 until the year 22,000.
        self._tiles = [array("i") for _ in tiers]
        self._cats = [array("b") for _ in tiers]
        self._counts = [array("i") for _ in tiers]
        self._cents = [array("q") for _ in tiers]  # amounts are at most 1e12, inside int64
        self._heads = [0] * N_WINDOWS
        self._last = float("-inf")
        self.counts = [0] * (N_WINDOWS * N_CATEGORIES)
        self.sums = [0] * (N_WINDOWS * N_CATEGORIES)

    @property
    def entries(self) -> int:
        """Tile entries kept (what the profile's size grows with: bounded by tiles × categories)."""
        return sum(len(tiles) for tiles in self._tiles)

    def edge(self, window: int, now: float) -> float:
        """The window's edge at ``now`` in seconds: what it holds happened after it."""
        return edge_us(window, to_us(now)) / US

    def advance(self, now: float) -> None:
        """Evict the tiles that are no longer within each window at time ``now``."""
        now_us = to_us(now)
        heads = self._heads
        counts = self.counts
        sums = self.sums
        for t, windows in enumerate(_TIER_WINDOWS):
            tiles = self._tiles[t]
            n = len(tiles)
            if not n:
                continue
            now_tile = now_us // _TIER_US[t]
            evicted = False
            for w in windows:
                head = heads[w]
                last_out = now_tile - _SPAN[w]
                if head < n and tiles[head] <= last_out:
                    cats, tally, cents = self._cats[t], self._counts[t], self._cents[t]
                    base = w * N_CATEGORIES
                    while head < n and tiles[head] <= last_out:
                        slot = base + cats[head]
                        counts[slot] -= tally[head]
                        sums[slot] -= cents[head]
                        head += 1
                    heads[w] = head
                    evicted = True
            if evicted:
                self._compact(t, windows)

    def _compact(self, tier: int, windows: tuple[int, ...]) -> None:
        heads = self._heads
        oldest = min(heads[w] for w in windows)
        if oldest and oldest * 2 >= len(self._tiles[tier]):
            for column in (self._tiles, self._cats, self._counts, self._cents):
                del column[tier][:oldest]
            for w in windows:
                heads[w] -= oldest

    def add(self, when: float, category: int, amount: int = 0) -> None:
        """Add one event; call :meth:`advance` with the same time first."""
        if when < self._last:
            when = self._last
        self._last = when
        when_us = to_us(when)
        for t, tile_us in enumerate(_TIER_US):
            tile = tile_of(when_us, tile_us)
            tiles, cats = self._tiles[t], self._cats[t]
            i = len(tiles) - 1
            while i >= 0 and tiles[i] == tile and cats[i] != category:
                i -= 1
            if i >= 0 and tiles[i] == tile:
                self._counts[t][i] += 1
                self._cents[t][i] += amount
            else:
                tiles.append(tile)
                cats.append(category)
                self._counts[t].append(1)
                self._cents[t].append(amount)
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
        heads = list(self._heads)
        tiers = []
        for t, windows in enumerate(_TIER_WINDOWS):
            oldest = min(heads[w] for w in windows)
            for w in windows:
                heads[w] -= oldest
            tiers.append(
                [
                    pack(column[t][oldest:])
                    for column in (self._tiles, self._cats, self._counts, self._cents)
                ]
            )
        return ["tiles", tiers, heads, self._last, self.counts, self.sums]

    @classmethod
    def from_state(cls, state: list) -> SlidingWindows:
        if state[0] != "tiles":
            return cls._from_events(state)
        w = cls.__new__(cls)  # every field is set here: nothing built only to be replaced
        tiers = state[1]
        w._tiles = [unpack("i", tier[0]) for tier in tiers]
        w._cats = [unpack("b", tier[1]) for tier in tiers]
        w._counts = [unpack("i", tier[2]) for tier in tiers]
        w._cents = [unpack("q", tier[3]) for tier in tiers]
        w._heads, w._last = list(state[2]), state[3]
        w.counts, w.sums = list(state[4]), list(state[5])
        return w

    @classmethod
    def _from_events(cls, state: list) -> SlidingWindows:
        """Windows saved before tiles (profile state 4 and earlier kept every event of the
        longest window): the events are added again, into tiles."""
        times, cats, amounts = (unpack(t, s) for t, s in zip("dbq", state, strict=False))
        w = cls()
        for when, category, amount in zip(times, cats, amounts, strict=True):
            w.add(when, category, amount)
        if times:
            w.advance(times[-1])
        return w
