"""Peer-group statistics over accounts' flow genomes, maintained incrementally.

A peer group is the accounts whose holders share a home country (see
:func:`vigil.profiles.update.peer_group`). For every counterparty country × direction it
keeps three quantile sketches (:class:`~vigil.profiles.sketch.QuantileSketch`) over the
*current* figures of the accounts that have that genome cell: their expectation E, their
volume and their count N, one value per account. When a transfer changes an account's cell,
the account's old value is taken out of each sketch (a DDSketch bucket is a function of the
value, so removing it is exact) and the new one put in: the group's percentiles are always
those of the accounts' current figures, within the sketch's relative error ``alpha``, at
O(1) cost per event and never recomputed from the accounts.

Where it lives: a peer group is one more profile in the :class:`~vigil.profiles.ProfileStore`,
of kind ``"peer"`` and keyed by the group (:attr:`Profile.peers`). The engine reads it with
the event's other profiles (one read on Redis) and writes it in the same all-or-none
write, so an account's genome and its contribution to its group never disagree, the
in-process store snapshots it with the rest, and a Redis compare-and-set clash re-applies
the change to the newer group state. The price on Redis is one hot key per home country that
every transfer of the country writes: fine for one process, a point of contention for many
(commutative bucket increments, e.g. ``HINCRBY``, would remove it). An account whose profile
is erased or expires stays counted in its group until the group is rebuilt.

>>> from vigil.profiles.genome import FlowGenome
>>> group, genome = PeerGroup(), FlowGenome()
>>> group.apply(genome.add("GB", "debit", 100_00, when=0.0))
>>> group.apply(genome.add("GB", "debit", 300_00, when=1.0))   # replaces the account's E=100
>>> peers = group.flow("GB", "debit")
>>> e, volume = peers.expectation.quantile(0.5), peers.volume.quantile(0.5)
>>> peers.members, abs(e - 200) <= 200 * peers.expectation.alpha, abs(volume - 400) <= 4
(1, True, True)
"""

from __future__ import annotations

from collections.abc import Iterable

from vigil.profiles.genome import Change
from vigil.profiles.sketch import QuantileSketch


class PeerFlow:
    """Sketches of the group's accounts' E, volume and N for one country × direction."""

    __slots__ = ("count", "expectation", "volume")

    def __init__(self) -> None:
        self.expectation = QuantileSketch()
        self.volume = QuantileSketch()
        self.count = QuantileSketch()

    @property
    def members(self) -> int:
        """How many accounts of the group have this cell."""
        return self.expectation.count

    def to_state(self) -> list:
        return [self.expectation.to_state(), self.volume.to_state(), self.count.to_state()]

    @classmethod
    def from_state(cls, state: list) -> PeerFlow:
        p = cls()
        p.expectation, p.volume, p.count = (QuantileSketch.from_state(s) for s in state)
        return p


class PeerGroup:
    """:class:`PeerFlow` per (counterparty country, direction) for one group of accounts."""

    __slots__ = ("cells",)

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], PeerFlow] = {}

    def flow(self, country: str, direction: str) -> PeerFlow | None:
        return self.cells.get((country, direction))

    def apply(self, changes: Iterable[Change]) -> None:
        """Replace each changed account cell's old figures with its new ones.

        An old figure the group does not hold (its state was lost or rebuilt) is skipped.
        """
        for change in changes:
            key = (change.country, change.direction)
            cell = self.cells.get(key)
            if cell is None:
                if change.after is None:
                    continue
                cell = self.cells[key] = PeerFlow()
            if change.before is not None:
                cell.expectation.remove(change.before.mean)
                cell.volume.remove(change.before.volume)
                cell.count.remove(change.before.n)
            if change.after is not None:
                cell.expectation.add(change.after.mean)
                cell.volume.add(change.after.volume)
                cell.count.add(change.after.n)
            if cell.members == 0:
                del self.cells[key]

    def to_state(self) -> list:
        return [[c, d, cell.to_state()] for (c, d), cell in self.cells.items()]

    @classmethod
    def from_state(cls, state: list) -> PeerGroup:
        g = cls()
        g.cells = {(c, d): PeerFlow.from_state(s) for c, d, s in state}
        return g
