"""A short ring of an entity's recent events, evicted by age: the volatile card–terminal edges.

>>> r = RecentEvents(max_age=3600.0, max_events=3)
>>> for t in (0.0, 100.0, 200.0, 5000.0):
...     r.add(RecentEvent(t, t + 60, "ATM-1", 6.5, 3.4, 0))
>>> [e.start for e in r.events]
[5000.0]
"""

from __future__ import annotations

from typing import NamedTuple


class RecentEvent(NamedTuple):
    start: float
    end: float
    place: str | None
    latitude: float | None
    longitude: float | None
    amount_cents: int
    category: int = -1
    transaction_id: str | None = None
    # Blocked by the engine: attempted, but no money moved.
    declined: bool = False


class RecentEvents:
    """At most ``max_events`` events, none older than ``max_age`` seconds before the newest."""

    __slots__ = ("events", "max_age", "max_events")

    def __init__(self, max_age: float = 86400.0, max_events: int = 32) -> None:
        self.max_age = max_age
        self.max_events = max_events
        self.events: list[RecentEvent] = []

    def add(self, event: RecentEvent) -> None:
        events = self.events
        events.append(event)
        edge = event.start - self.max_age
        drop = 0
        while drop < len(events) and events[drop].end < edge:
            drop += 1
        drop = max(drop, len(events) - self.max_events)
        if drop:
            del events[:drop]

    def since(self, edge: float, categories: tuple[int, ...] | None = None) -> list[RecentEvent]:
        """Events that ended after ``edge`` (the windows' convention: t−W < s ≤ t), oldest first.

        >>> r = RecentEvents()
        >>> r.add(RecentEvent(0.0, 60.0, None, None, None, 100, 0, "t1"))
        >>> r.add(RecentEvent(100.0, 160.0, None, None, None, 0, 4, "t2"))
        >>> [e.transaction_id for e in r.since(60.0)], len(r.since(0.0, (0,)))
        (['t2'], 1)
        """
        return [
            e
            for e in self.events
            if e.end > edge and (categories is None or e.category in categories)
        ]

    def to_state(self) -> list:
        return [self.max_age, self.max_events, [list(e) for e in self.events]]

    @classmethod
    def from_state(cls, state: list) -> RecentEvents:
        r = cls(state[0], state[1])
        r.events = [RecentEvent(*e) for e in state[2]]
        return r
