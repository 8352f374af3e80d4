"""The detector protocol: read a :class:`Context`, return the reasons it finds (maybe none).

A detector never changes state; it judges the event against the profiles as they were
before it, so a decision is reproducible from the event and the state it saw.
"""

from __future__ import annotations

from typing import Protocol

from vigil.detect.context import Context
from vigil.domain import Reason


class Detector(Protocol):
    #: The reason codes this detector can emit (documented, stable).
    codes: tuple[str, ...]

    def detect(self, ctx: Context) -> list[Reason]: ...


def strength(excess: float, low: float = 0.5, high: float = 0.95, scale: float = 1.0) -> float:
    """Map an excess over a threshold (0 at the threshold) to a score in [low, high].

    >>> strength(0.0), strength(1.0), round(strength(0.5), 3)
    (0.5, 0.95, 0.725)
    """
    if excess <= 0:
        return low
    return min(high, low + (high - low) * min(1.0, excess / scale))
