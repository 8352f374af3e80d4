"""A terminal's transactions and fraud labels in time tiles: the state terminal risk reads.

Terminal risk (:class:`vigil.features.TerminalRisk`, a served model's input) is the share of a
terminal's completed transactions, over a window ending one label delay ago, that are known to
be fraud. It lives in the terminal's profile, not in each process, so that every process
sharing the profiles (several ``vigil consume`` workers, ``vigil serve --workers N``) reads
the same value one process would:

- every completed transaction at the terminal is counted in its tile by the profile update,
  like the profile's other windows (:func:`vigil.profiles.update.update_profiles`);
- a fraud label is counted in the tile of its transaction by whichever process receives it:
  the label names the transaction, the log gives its terminal and time, and the store counts
  it in the terminal's profile with a compare-and-set write, once per labelled transaction
  (:meth:`vigil.profiles.store.ProfileStore.count_fraud`). No process has to have seen the
  transaction, and no channel between processes is needed.

Counts commute, so the state is the same whatever order the processes apply events and labels
in; it is derived from the log (the stored events and the stored fraud labels), and rebuilt
from it after a crash as the rest of the profile is (:mod:`vigil.profiles.recovery`).

Tiles, and the window convention (the offline builder's too, :mod:`vigil.features.offline`):
the 1 d window is read in 1-hour tiles, the 7 d window in 6-hour tiles, the 30 d window in
day tiles. Read at time ``t`` with label delay ``d``, the window of length ``W`` and tile
``h`` ends at ``u = floor((t - d) / h) * h`` and holds the transactions with
``u - W < s <= u`` (times in whole microseconds). It is exactly ``W`` long; its end is between
``d`` and ``d + h`` before ``t``: the edge error is a delay longer by at most one tile (1 hour,
6 hours, 1 day), never shorter, so a transaction too recent for its label to be due is never
counted. Tiles are coarser than the profile windows' (:mod:`vigil.profiles.windows`) because
they must reach back a label delay further. A label counts from when it is applied: in a
stream in time order (a replay, the parity tests) that is its arrival time, ``known_at``.

Bounded whatever the traffic: a tile that no read with a delay up to :data:`LABEL_DELAY_MAX`
can reach is dropped, so a profile keeps at most 291 transaction counts (194 hour, 58 six-hour
and 39 day tiles), 4 bytes each, and as many fraud counts once a label arrives.

>>> DAY = 86400.0
>>> tiles = FraudTiles()
>>> for hour in range(24 * 10):   # a transaction an hour for ten days
...     tiles.add(hour * 3600.0 + 60)
>>> tiles.label(2 * DAY + 60), tiles.label(6 * DAY + 60)
(True, True)
>>> tiles.counts(1, 8 * DAY + 7200, 2 * DAY)  # 7 d window (-1 d, 6 d]: days 0 to 5
(144, 1)
>>> tiles.counts(0, 7 * DAY + 7200, DAY)  # 1 d window (5 d 2 h, 6 d 2 h]
(24, 1)
>>> FraudTiles.from_state(tiles.to_state()).counts(0, 8 * DAY, DAY), tiles.entries  # (6 d, 7 d]
((24, 1), 243)
"""

from __future__ import annotations

from array import array

from vigil.profiles.packed import pack, unpack
from vigil.profiles.windows import DAY, HOUR, US, tile_of, to_us

# The terminal-risk windows (seconds) and the tile each is read in: the bound on its error.
WINDOWS: tuple[float, ...] = (DAY, 7 * DAY, 30 * DAY)
TILES: tuple[float, ...] = (HOUR, 6 * HOUR, DAY)
WINDOW_INDEX = {window: i for i, window in enumerate(WINDOWS)}
# The longest label delay the tiles serve: a model trained with a longer one is refused.
LABEL_DELAY_MAX = 7 * DAY
# How far back a label can still change a read: a label on an older transaction counts nothing.
REACH = LABEL_DELAY_MAX + WINDOWS[-1] + TILES[-1]

_TILE_US = tuple(round(h * US) for h in TILES)
_SPAN = tuple(round(w / h) for w, h in zip(WINDOWS, TILES, strict=True))
_DELAY_MAX_US = round(LABEL_DELAY_MAX * US)


def window_end_us(window: int, now_us: int, delay_us: int) -> int:
    """The end ``u`` of terminal-risk window ``window`` read at ``now_us`` with the delay:
    it holds the transactions with ``u - W < s <= u``."""
    tile = _TILE_US[window]
    return (now_us - delay_us) // tile * tile


class FraudTiles:
    """Per window: completed transactions, and those labelled fraud, per tile of their time.

    Each window's tiles are dense arrays from its oldest kept tile: a busy terminal fills every
    tile, and a quiet one keeps as many (zeros are 4 bytes too), so the size depends on
    neither. Fraud counts stay empty until the first label.
    """

    __slots__ = ("_counts", "_first", "_frauds", "_last")

    def __init__(self) -> None:
        windows = range(len(WINDOWS))
        self._first = [0] * len(WINDOWS)  # the tile of each window's counts[0]
        self._counts = [array("i") for _ in windows]
        self._frauds = [array("i") for _ in windows]
        self._last = -(2**62)  # the latest transaction time added (µs)

    @property
    def entries(self) -> int:
        """Tiles kept (what the size grows with: bounded, see the module's note)."""
        return sum(len(counts) for counts in self._counts)

    def add(self, when: float) -> None:
        """A completed transaction at ``when`` (epoch seconds), in any order: a late one is
        counted in its own tile while a read can still reach it."""
        when_us = to_us(when)
        self._last = max(self._last, when_us)
        for w, tile_us in enumerate(_TILE_US):
            oldest = self._oldest(w)
            tile = tile_of(when_us, tile_us)
            if tile < oldest:
                continue  # no read can reach it any more
            counts, frauds = self._counts[w], self._frauds[w]
            first = self._first[w]
            if counts and first < oldest:  # drop the tiles no read can reach any more
                drop = min(oldest - first, len(counts))
                del counts[:drop]
                del frauds[:drop]
                first = self._first[w] = first + drop
            if not counts:
                first = self._first[w] = tile
            elif tile < first:
                self._grow(w, first - tile, front=True)
                first = self._first[w] = tile
            if tile - first >= len(counts):
                self._grow(w, tile - first - len(counts) + 1)
            counts[tile - first] += 1

    def label(self, when: float) -> bool:
        """A fraud label on the transaction at ``when``: counted in its tile of every window
        that still keeps it; False when none does (counted nothing)."""
        when_us = to_us(when)
        counted = False
        for w, tile_us in enumerate(_TILE_US):
            at = tile_of(when_us, tile_us) - self._first[w]
            counts = self._counts[w]
            if not 0 <= at < len(counts) or not counts[at]:
                continue  # not a transaction these tiles hold
            frauds = self._frauds[w]
            if not frauds:
                frauds.extend(array("i", bytes(4 * len(counts))))
            frauds[at] += 1
            counted = True
        return counted

    def forget_labels(self) -> None:
        """Every fraud count back to none (before the labels are counted again from the log)."""
        for frauds in self._frauds:
            del frauds[:]

    def counts(self, window: int, now: float, delay: float) -> tuple[int, int]:
        """(transactions, known frauds) in terminal-risk window ``window`` (an index into
        :data:`WINDOWS`) read at ``now`` with label delay ``delay`` (seconds)."""
        end = window_end_us(window, to_us(now), round(delay * US)) // _TILE_US[window]
        first = self._first[window]
        lo = max(end - _SPAN[window] + 1 - first, 0)
        hi = end + 1 - first
        counts = self._counts[window]
        if hi <= lo or lo >= len(counts):
            return 0, 0
        frauds = self._frauds[window]
        return sum(counts[lo:hi]), sum(frauds[lo:hi]) if frauds else 0

    def _oldest(self, window: int) -> int:
        """The oldest tile a read from the latest time on, with a delay up to the longest, can
        reach (reads never go back in time further than the latest transaction's)."""
        tile = _TILE_US[window]
        return (self._last - _DELAY_MAX_US) // tile - _SPAN[window] + 1

    def _grow(self, window: int, n: int, *, front: bool = False) -> None:
        zeros = array("i", bytes(4 * n))
        for column in (self._counts[window], self._frauds[window]):
            if not column and column is self._frauds[window]:
                continue  # no labels yet: stays empty
            if front:
                column[0:0] = zeros
            else:
                column.extend(zeros)

    def to_state(self) -> list:
        return [
            self._last,
            list(self._first),
            [pack(c) for c in self._counts],
            [pack(f) for f in self._frauds],
        ]

    @classmethod
    def from_state(cls, state: list) -> FraudTiles:
        tiles = cls.__new__(cls)  # every field is set here
        tiles._last = state[0]
        tiles._first = list(state[1])
        tiles._counts = [unpack("i", c) for c in state[2]]
        tiles._frauds = [unpack("i", f) for f in state[3]]
        return tiles
