"""The profile of one entity (a card, user, account, terminal or device): how it usually behaves.

A profile is updated incrementally on every event, in event time, and serialises compactly
(msgpack) so a restart restores it exactly.

>>> p = Profile()
>>> p.record_transaction(0.0, 120.0, 0, 250000, place="ATM-1", latitude=6.5, longitude=3.4,
...                      attributes=(("terminal", "ATM-1"),))
>>> p.n, p.amount_stats(0).mean, p.windows.count(4, 0), "ATM-1" in p.seen["terminal"]
(1, 2500.0, 1, True)
>>> Profile.from_bytes(p.to_bytes()).to_bytes() == p.to_bytes()
True

An account's profile also keeps its flow genome (:mod:`vigil.profiles.genome`), and a peer
group's profile (kind ``"peer"``) the group's statistics (:mod:`vigil.profiles.peers`):

>>> changes = p.record_flow("GB", "debit", 250000, 0.0, group="NG")
>>> p.genome.flow("GB", "debit").n, p.genome.group
(1, 'NG')
>>> peer = Profile(); peer.peer_group().apply(changes)
>>> Profile.from_bytes(peer.to_bytes()).peers.flow("GB", "debit").members
1
"""

from __future__ import annotations

from collections.abc import Iterable

import msgpack

from vigil.profiles.fraud import FraudTiles
from vigil.profiles.genome import Change, FlowGenome
from vigil.profiles.peers import PeerGroup
from vigil.profiles.recent import RecentEvent, RecentEvents
from vigil.profiles.running import RunningStats
from vigil.profiles.seen import SeenValues
from vigil.profiles.sketch import QuantileSketch
from vigil.profiles.windows import CATEGORY_INDEX, SlidingWindows

LOGIN = CATEGORY_INDEX["login"]
LOGIN_FAILED = CATEGORY_INDEX["login_failed"]
# 2: the transfer_in category; 3: the flow genome and peer-group statistics; 4: the windows'
# events as packed arrays; 5: the windows in time tiles (their events are tiled when read);
# 6: a terminal's fraud tiles (terminal risk).
_VERSION = 6
# Earlier versions this one reads (they lack only fields added since, or hold them as lists).
_READS = (2, 3, 4, 5, 6)


class Profile:
    """Windows, amount statistics, seen values, hour-of-day habits and last whereabouts."""

    __slots__ = (
        "_top_k",
        "farthest",
        "first_time",
        "fraud",
        "genome",
        "hours",
        "last_end",
        "last_latitude",
        "last_located",
        "last_longitude",
        "last_place",
        "last_time",
        "n",
        "open",
        "peers",
        "quantiles",
        "recent",
        "seen",
        "stats",
        "windows",
    )

    def __init__(
        self, *, top_k: int = 8, recent_window: float = 86400.0, recent_max: int = 32
    ) -> None:
        self.n = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.last_end: float | None = None
        self.last_place: str | None = None
        self.last_latitude: float | None = None
        self.last_longitude: float | None = None
        # When the entity was last known to be at the last place (events without a location,
        # such as an online payment with no geolocation, say nothing about where it is).
        self.last_located: float | None = None
        # The farthest from home (km) the card has been seen, on allowed card-present events.
        self.farthest = 0.0
        self.windows = SlidingWindows()
        self.stats: dict[int, RunningStats] = {}
        self.quantiles: dict[int, QuantileSketch] = {}
        self.seen: dict[str, SeenValues] = {}
        self.hours = [0] * 24
        self.recent = RecentEvents(recent_window, recent_max)
        # Two-phase transactions begun but not ended: transaction id → (start, place, lat, lon).
        self.open: dict[str, list] = {}
        # An account's flow genome, bounded to ``top_k`` counterparty countries like the seen
        # values; a peer group's statistics. Each stays None on profiles that have none.
        self.genome: FlowGenome | None = None
        self.peers: PeerGroup | None = None
        # A terminal's transactions and fraud labels in tiles (terminal risk); None elsewhere.
        self.fraud: FraudTiles | None = None
        self._top_k = top_k

    # -- reading -------------------------------------------------------------------------
    def amount_stats(self, category: int) -> RunningStats:
        return self.stats.get(category) or RunningStats()

    def amount_quantile(self, category: int, q: float) -> float:
        sketch = self.quantiles.get(category)
        return sketch.quantile(q) if sketch else float("nan")

    def moved(self, window: int, category: int, now: float) -> int:
        """The money (minor units) of ``category`` that moved in ``window`` up to ``now``: the
        window's total less the blocked attempts among the recent events. A blocked attempt
        the recent events no longer hold (more than ``recent_max`` events, or older than
        their window) counts as moved, so a limit errs towards flagging."""
        edge = self.windows.edge(window, now)
        declined = sum(e.amount_cents for e in self.recent.since(edge, (category,)) if e.declined)
        return self.windows.total(window, category) - declined

    def has_seen(self, dimension: str, value: str) -> bool:
        values = self.seen.get(dimension)
        return values is not None and value in values

    def seen_count(self, dimension: str) -> int:
        values = self.seen.get(dimension)
        return len(values) if values else 0

    # -- updating ------------------------------------------------------------------------
    def advance(self, when: float) -> None:
        """Move the sliding windows to ``when`` (before reading or recording at that time)."""
        self.windows.advance(when)

    def record_start(
        self,
        transaction_id: str,
        start: float,
        place: str | None,
        latitude: float | None,
        longitude: float | None,
    ) -> None:
        self.open[transaction_id] = [start, place, latitude, longitude]

    def record_transaction(
        self,
        start: float,
        end: float,
        category: int,
        amount_cents: int,
        *,
        place: str | None,
        latitude: float | None,
        longitude: float | None,
        attributes: Iterable[tuple[str, str]] = (),
        transaction_id: str | None = None,
        declined: bool = False,
    ) -> None:
        """Record a completed transaction (a single event, or the end of a two-phase one).

        Windows and amount statistics count every transaction with its amount, whatever the
        engine decided: they describe what the entity attempted, a function of the events
        alone, which the offline feature builder computes without knowing any decision. A
        ``declined`` (blocked) transaction moved no money, which the recent events remember
        (:meth:`moved`).
        """
        if transaction_id is not None:
            self.open.pop(transaction_id, None)
        self._touch(start, end)
        self.windows.add(end, category, amount_cents)
        amount = amount_cents / 100
        stats = self.stats.get(category)
        if stats is None:
            stats = self.stats[category] = RunningStats()
            self.quantiles[category] = QuantileSketch()
        stats.add(amount)
        self.quantiles[category].add(amount)
        self._remember(attributes, end)
        self.hours[int(start // 3600) % 24] += 1
        self._locate(place, latitude, longitude, end)
        self.recent.add(
            RecentEvent(
                start,
                end,
                place,
                latitude,
                longitude,
                amount_cents,
                category,
                transaction_id,
                declined,
            )
        )

    def record_login(
        self,
        when: float,
        success: bool,
        *,
        latitude: float | None,
        longitude: float | None,
        place: str | None,
        attributes: Iterable[tuple[str, str]] = (),
        witnessed: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Record a login attempt; ``attributes`` are learned only when it succeeded.

        ``witnessed`` values (the user trying a device or network) are remembered either way:
        the users failing from one network are what credential stuffing looks like.
        """
        self._touch(when, when)
        self.windows.add(when, LOGIN if success else LOGIN_FAILED)
        self._remember(witnessed, when)
        if not success:
            # A failed attempt must not make an attacker's device or country look familiar.
            return
        self._remember(attributes, when)
        self.hours[int(when // 3600) % 24] += 1
        self._locate(place, latitude, longitude, when)

    def record_flow(
        self, country: str, direction: str, amount_cents: int, when: float, *, group: str
    ) -> list[Change]:
        """Add a transfer to the flow genome, counted in peer ``group``; returns what changed
        for the group's statistics (:meth:`PeerGroup.apply`)."""
        genome = self.genome
        if genome is None:
            genome = self.genome = FlowGenome(self._top_k)
        # Joining first: a move to a new group brings the account's cells with it.
        return genome.join(group) + genome.add(country, direction, amount_cents, when)

    def fraud_tiles(self) -> FraudTiles:
        """This (terminal) profile's fraud tiles, created on first use."""
        if self.fraud is None:
            self.fraud = FraudTiles()
        return self.fraud

    def peer_group(self) -> PeerGroup:
        """This (peer) profile's group statistics, created on first use."""
        if self.peers is None:
            self.peers = PeerGroup()
        return self.peers

    def _locate(
        self, place: str | None, latitude: float | None, longitude: float | None, when: float
    ) -> None:
        if latitude is not None:
            self.last_place = place
            self.last_latitude = latitude
            self.last_longitude = longitude
            self.last_located = when

    def _touch(self, start: float, end: float) -> None:
        self.n += 1
        if self.first_time is None:
            self.first_time = start
        self.last_time = start if self.last_time is None else max(self.last_time, start)
        self.last_end = end if self.last_end is None else max(self.last_end, end)

    def _remember(self, attributes: Iterable[tuple[str, str]], when: float) -> None:
        seen = self.seen
        for dimension, value in attributes:
            values = seen.get(dimension)
            if values is None:
                values = seen[dimension] = SeenValues(self._top_k)
            values.add(value, when)

    # -- persistence ---------------------------------------------------------------------
    def to_state(self) -> list:
        return [
            _VERSION,
            self.n,
            self.first_time,
            self.last_time,
            self.last_end,
            self.last_place,
            self.last_latitude,
            self.last_longitude,
            self.last_located,
            self.windows.to_state(),
            [[k, s.to_state()] for k, s in self.stats.items()],
            [[k, q.to_state()] for k, q in self.quantiles.items()],
            [[k, v.to_state()] for k, v in self.seen.items()],
            self.hours,
            self.recent.to_state(),
            [[k, *v] for k, v in self.open.items()],
            self._top_k,
            self.farthest,
            None if self.genome is None else self.genome.to_state(),
            None if self.peers is None else self.peers.to_state(),
            None if self.fraud is None else self.fraud.to_state(),
        ]

    @classmethod
    def from_state(cls, state: list) -> Profile:
        if state[0] not in _READS:
            raise ValueError(f"profile state version {state[0]} is not one of {_READS}")
        # Every field is set here: nothing is built only to be replaced (a shared profile is
        # decoded on every event).
        p = cls.__new__(cls)
        p._top_k = state[16]
        (
            p.n,
            p.first_time,
            p.last_time,
            p.last_end,
            p.last_place,
            p.last_latitude,
            p.last_longitude,
            p.last_located,
        ) = state[1:9]
        p.windows = SlidingWindows.from_state(state[9])
        p.stats = {k: RunningStats.from_state(s) for k, s in state[10]}
        p.quantiles = {k: QuantileSketch.from_state(s) for k, s in state[11]}
        p.seen = {k: SeenValues.from_state(s) for k, s in state[12]}
        p.hours = list(state[13])
        p.recent = RecentEvents.from_state(state[14])
        p.open = {row[0]: list(row[1:]) for row in state[15]}
        p.farthest = state[17]
        p.genome = p.peers = p.fraud = None
        if state[0] >= 3:
            genome, peers = state[18], state[19]
            p.genome = None if genome is None else FlowGenome.from_state(genome)
            p.peers = None if peers is None else PeerGroup.from_state(peers)
        if state[0] >= 6 and state[20] is not None:
            p.fraud = FraudTiles.from_state(state[20])
        return p

    def to_bytes(self) -> bytes:
        return msgpack.packb(self.to_state(), use_bin_type=True)

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        return cls.from_state(msgpack.unpackb(data, raw=False, strict_map_key=False))
