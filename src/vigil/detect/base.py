"""The detector protocol: read a :class:`Context`, return the reasons it finds (maybe none).

A detector never changes state; it judges the event against the profiles as they were
before it, so a decision is reproducible from the event and the state it saw.
"""

from __future__ import annotations

from typing import Protocol

from vigil.detect.context import Context
from vigil.domain import Reason


class Detector(Protocol):
    """What every detector is: reason codes it may emit, and ``detect``.

    A new detector is a module of this folder holding one class like this one, with its
    parameters in :mod:`vigil.config` and one line in :func:`vigil.detect.default_detectors`;
    it reads only what the context holds:

    >>> from datetime import datetime, UTC
    >>> from vigil.domain import Transaction
    >>> class LargeWithdrawal:
    ...     codes = ("large_withdrawal",)
    ...     def detect(self, ctx: Context) -> list[Reason]:
    ...         if ctx.amount is None or ctx.amount < 1_000:
    ...             return []
    ...         return [Reason(code="large_withdrawal", score=strength(ctx.amount / 1_000 - 1),
    ...                        detail=f"{ctx.amount:,.2f} withdrawn at once")]
    >>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
    ...                  amount="1500.00", timestamp=datetime(2024, 1, 1, tzinfo=UTC))
    >>> ctx = Context(tx, 0.0, 0.0, 0, 150_000)
    >>> detector: Detector = LargeWithdrawal()
    >>> [(r.code, r.score, r.detail) for r in detector.detect(ctx)]
    [('large_withdrawal', 0.725, '1,500.00 withdrawn at once')]
    """

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
