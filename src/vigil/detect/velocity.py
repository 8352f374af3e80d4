"""More operations in a short window than the card's usual rate makes plausible.

The card's usual rate is the larger of its behaviour parameters (operations per day from
reference data) and its own 30-day history; operations are assumed to happen during
``active_hours`` of the day. The count in the window, this operation included, is judged by
its Poisson tail probability.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> from vigil.profiles import Profile
>>> card = Profile()
>>> for i in range(7):
...     card.advance(i * 300.0)
...     card.record_transaction(i * 300.0, i * 300.0 + 60, 0, 100, place=None, latitude=None,
...                             longitude=None)
>>> card.advance(2400.0)
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
...                  amount=1, timestamp=datetime(2022, 2, 1, tzinfo=UTC))
>>> [r.code for r in Velocity().detect(Context(tx, 2400, 2400, 0, 100, profiles={"card": card}))]
['velocity']
>>> poisson_tail(8, 0.1) < 1e-10
True
"""

from __future__ import annotations

import math

from vigil.config import VelocityConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.domain import Reason
from vigil.profiles import Profile
from vigil.profiles.windows import CATEGORY_INDEX, WINDOW_INDEX, WINDOWS

_TRANSACTION_CATEGORIES = tuple(
    CATEGORY_INDEX[c] for c in ("withdrawal", "deposit", "transfer", "payment", "balance_inquiry")
)
_MONTH = WINDOW_INDEX["30d"]
_DAY_S = 86400.0
# A profile's own rate means little before a week of history; it is read over 30 days.
_SETTLED_DAYS = 7.0
_RATE_DAYS = 30.0
_RATE_FIELDS = ("withdrawal_day", "deposit_day", "inquiry_day", "transfer_day")


def poisson_tail(k: int, lam: float) -> float:
    """P(N >= k) for N ~ Poisson(lam)."""
    if k <= 0:
        return 1.0
    term = math.exp(-lam)
    cdf = term
    for i in range(1, k):
        term *= lam / i
        cdf += term
    # Past the mode, the complement underflows; sum the tail directly for accuracy.
    if cdf > 0.999999:
        term *= lam / k
        tail = 0.0
        i = k
        while term > 1e-300 and i < k + 200:
            tail += term
            i += 1
            term *= lam / i
        return tail
    return max(0.0, 1.0 - cdf)


def usual_per_day(
    profile: Profile,
    now: float,
    categories: tuple[int, ...],
    *,
    prior: float = 0.0,
    floor: float = 0.0,
) -> float:
    """How many operations of ``categories`` a day are usual for the profile's entity.

    The larger of ``prior`` (reference behaviour parameters), ``floor``, and the profile's
    own rate over its 30-day window — counted only once it is a week old, over the days it
    has existed when younger than 30.

    >>> p = Profile()
    >>> for day in range(10):
    ...     p.advance(day * 86400.0)
    ...     p.record_transaction(day * 86400.0, day * 86400.0, 0, 100, place=None,
    ...                          latitude=None, longitude=None)
    >>> usual_per_day(p, 10 * 86400.0, (0,)), usual_per_day(p, 5 * 86400.0, (0,), floor=0.5)
    (1.0, 0.5)
    """
    observed = 0.0
    if profile.first_time is not None and now - profile.first_time >= _SETTLED_DAYS * _DAY_S:
        days = min(_RATE_DAYS, (now - profile.first_time) / _DAY_S)
        observed = sum(profile.windows.count(_MONTH, c) for c in categories) / days
    return max(prior, floor, observed)


class Velocity:
    codes = ("velocity",)

    def __init__(self, config: VelocityConfig | None = None) -> None:
        self.config = config or VelocityConfig()
        self._window = WINDOW_INDEX[self.config.window]
        self._hours = WINDOWS[self._window][1] / 3600

    def detect(self, ctx: Context) -> list[Reason]:
        if not ctx.begins or ctx.category not in _TRANSACTION_CATEGORIES:
            return []
        card = ctx.profiles.get("card")
        if card is None:
            return []
        k = 1 + _operations(card, self._window)
        cfg = self.config
        if k < cfg.min_count:
            return []
        behaviour = ctx.card.behaviour if ctx.card is not None else None
        prior = sum(getattr(behaviour, f) for f in _RATE_FIELDS) if behaviour else 0.0
        per_day = usual_per_day(card, ctx.start, _TRANSACTION_CATEGORIES, prior=prior)
        lam = max(per_day, cfg.min_rate_per_day) * self._hours / cfg.active_hours
        p = poisson_tail(k, lam)
        if p >= cfg.tail_probability:
            return []
        excess = math.log10(cfg.tail_probability / max(p, 1e-300))
        burst = card.recent.since(ctx.end - WINDOWS[self._window][1], _TRANSACTION_CATEGORIES)
        return [
            Reason(
                code="velocity",
                score=strength(excess, low=0.5, high=0.9, scale=4.0),
                detail=f"{k} operations in {cfg.window} against a usual {per_day:.1f} a day "
                f"(chance {p:.1e})",
                entity="card",
                evidence=tuple(e.transaction_id for e in burst if e.transaction_id),
            )
        ]


def _operations(card: Profile, window: int) -> int:
    """Completed transactions of every type in one of the card's windows."""
    return sum(card.windows.count(window, c) for c in _TRANSACTION_CATEGORIES)
