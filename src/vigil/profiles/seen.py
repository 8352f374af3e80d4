"""The values an entity has used (countries, devices, terminals, counterparties), bounded.

Each value keeps its count and first/last time seen. When full, the value with the fewest
uses (the least recent among ties) makes room: a value used once long ago may later look new
again, which is the price of a bounded profile and errs on the side of asking.

>>> s = SeenValues(capacity=2)
>>> s.add("NG", 10.0); s.add("NG", 20.0); s.add("GH", 30.0); s.add("US", 40.0)
>>> sorted(s.values), s.first_seen("NG"), s.count("GH")
(['NG', 'US'], 10.0, 0)
"""

from __future__ import annotations


class SeenValues:
    """Bounded map value → [count, first_seen, last_seen]."""

    __slots__ = ("capacity", "values")

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self.values: dict[str, list[float]] = {}

    def __contains__(self, value: object) -> bool:
        return value in self.values

    def __len__(self) -> int:
        return len(self.values)

    def add(self, value: str, when: float) -> None:
        entry = self.values.get(value)
        if entry is not None:
            entry[0] += 1
            entry[2] = when
            return
        if len(self.values) >= self.capacity:
            victim = min(self.values.items(), key=lambda kv: (kv[1][0], kv[1][2]))[0]
            del self.values[victim]
        self.values[value] = [1, when, when]

    def count(self, value: str) -> int:
        entry = self.values.get(value)
        return int(entry[0]) if entry else 0

    def first_seen(self, value: str) -> float | None:
        entry = self.values.get(value)
        return entry[1] if entry else None

    def most_common(self, n: int | None = None) -> list[tuple[str, int]]:
        ranked = sorted(self.values.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [(k, int(v[0])) for k, v in ranked[:n]]

    def to_state(self) -> list:
        return [self.capacity, [[k, *v] for k, v in self.values.items()]]

    @classmethod
    def from_state(cls, state: list) -> SeenValues:
        s = cls(state[0])
        s.values = {k: [c, f, last] for k, c, f, last in state[1]}
        return s
