"""An account's flow genome: per counterparty country × direction, the figures E, SD, volume, N.

Every completed transfer (or any transaction naming a counterparty country) adds its amount
to one cell, keyed by the counterparty's country and the direction (``debit``: money leaving
the account, ``credit``: money arriving). A cell keeps Welford moments (the expectation E and
standard deviation SD of the amounts, the count N) and the exact volume in minor units, so the
figures are exact and a replay reproduces them. The genome is bounded like the profile's seen
values: at most ``capacity`` counterparty countries; a new country beyond that evicts the one
with the fewest transfers (the least recent among ties), both directions at once.

Peer-group statistics (:mod:`vigil.profiles.peers`) hold one value per account and cell, so
every change to a cell is reported as a :class:`Change` (its figures before and after; None
when the cell is new or evicted) for the peer group to replace the account's contribution.

>>> g = FlowGenome(capacity=2)
>>> for amount in (100_00, 300_00):
...     changes = g.add("GB", "debit", amount, when=0.0)
>>> g.flow("GB", "debit")
Flow(mean=200.0, std=141.4213562373095, volume=400.0, n=2)
>>> changes
[Change(country='GB', direction='debit', before=Flow(mean=100.0, std=0.0, volume=100.0, n=1), \
after=Flow(mean=200.0, std=141.4213562373095, volume=400.0, n=2))]
>>> round(g.preview("GB", "debit", 600_00).mean, 2)   # as if one more, without adding it
333.33
>>> _ = g.add("NG", "credit", 50_00, when=1.0)
>>> [(c.country, c.after) for c in g.add("US", "debit", 10_00, when=2.0)][0]   # NG is evicted
('NG', None)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from vigil.profiles.running import RunningStats

DIRECTIONS = ("debit", "credit")


class Flow(NamedTuple):
    """One cell's figures: expectation E (mean amount), SD, volume (sum) and count N."""

    mean: float
    std: float
    volume: float
    n: int


class Change(NamedTuple):
    """A cell's figures before and after one update (None: the cell did not / does not exist)."""

    country: str
    direction: str
    before: Flow | None
    after: Flow | None


class _Cell:
    __slots__ = ("last", "stats", "volume_cents")

    def __init__(self) -> None:
        self.stats = RunningStats()
        self.volume_cents = 0
        self.last = 0.0

    def flow(self) -> Flow:
        s = self.stats
        return Flow(s.mean, s.std, self.volume_cents / 100, s.n)


class FlowGenome:
    """Cells keyed by (counterparty country, direction), at most ``capacity`` countries.

    ``group`` is the peer group the account's cells are counted in (see
    :func:`vigil.profiles.update.peer_group`), set when the first cell is counted.
    """

    __slots__ = ("capacity", "cells", "group")

    def __init__(self, capacity: int = 8) -> None:
        if capacity < 1:
            raise ValueError(f"genome capacity: must be at least 1, got {capacity}")
        self.capacity = capacity
        self.cells: dict[tuple[str, str], _Cell] = {}
        self.group: str | None = None

    def __len__(self) -> int:
        return len(self.cells)

    def flow(self, country: str, direction: str) -> Flow | None:
        cell = self.cells.get((country, direction))
        return None if cell is None else cell.flow()

    def flows(self) -> Iterator[tuple[str, str, Flow]]:
        for (country, direction), cell in self.cells.items():
            yield country, direction, cell.flow()

    def countries(self) -> set[str]:
        return {country for country, _ in self.cells}

    def preview(self, country: str, direction: str, amount_cents: int) -> Flow:
        """The cell's figures as they would be with this amount added (nothing changes)."""
        cell = self.cells.get((country, direction))
        stats = RunningStats() if cell is None else RunningStats.from_state(cell.stats.to_state())
        stats.add(amount_cents / 100)
        volume = (0 if cell is None else cell.volume_cents) + amount_cents
        return Flow(stats.mean, stats.std, volume / 100, stats.n)

    def add(self, country: str, direction: str, amount_cents: int, when: float) -> list[Change]:
        """Add one amount; returns every cell that changed (an evicted country's included)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction: {direction!r} is not one of {DIRECTIONS}")
        changes: list[Change] = []
        key = (country, direction)
        cell = self.cells.get(key)
        if cell is None:
            if country not in self.countries():
                changes.extend(self._make_room())
            cell = self.cells[key] = _Cell()
            before = None
        else:
            before = cell.flow()
        cell.stats.add(amount_cents / 100)
        cell.volume_cents += amount_cents
        cell.last = max(cell.last, when)
        changes.append(Change(country, direction, before, cell.flow()))
        return changes

    def join(self, group: str) -> list[Change]:
        """Count the account in ``group``: every cell as new there (none when already in it).

        An account changes group only when its holder's reference data changes; its figures
        then stay counted in the old group too, which this account's events never read.
        """
        if self.group == group:
            return []
        self.group = group
        return [Change(c, d, None, flow) for c, d, flow in self.flows()]

    def _make_room(self) -> list[Change]:
        by_country: dict[str, tuple[int, float]] = {}
        for (country, _), cell in self.cells.items():
            n, last = by_country.get(country, (0, 0.0))
            by_country[country] = (n + cell.stats.n, max(last, cell.last))
        if len(by_country) < self.capacity:
            return []
        victim = min(by_country, key=lambda c: by_country[c])
        changes = []
        for direction in DIRECTIONS:
            cell = self.cells.pop((victim, direction), None)
            if cell is not None:
                changes.append(Change(victim, direction, cell.flow(), None))
        return changes

    def to_state(self) -> list:
        return [
            self.capacity,
            self.group,
            [
                [c, d, cell.stats.to_state(), cell.volume_cents, cell.last]
                for (c, d), cell in self.cells.items()
            ],
        ]

    @classmethod
    def from_state(cls, state: list) -> FlowGenome:
        g = cls(state[0])
        g.group = state[1]
        for country, direction, stats, volume_cents, last in state[2]:
            cell = g.cells[(country, direction)] = _Cell()
            cell.stats = RunningStats.from_state(stats)
            cell.volume_cents = volume_cents
            cell.last = last
        return g
