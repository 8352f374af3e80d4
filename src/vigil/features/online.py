"""Online features: the declared features of one event, read from the engine's profiles.

Call :func:`online_features` where the detectors run (the profiles advanced to the event's time,
not yet updated with it); a detector that returns no reasons is the simplest hook (see
tests/features/conftest.py). Undefined values (no history, no location, no amount) are NaN.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> from vigil.features.spec import FEATURE_NAMES
>>> from vigil.profiles import Profile
>>> at = [datetime(2022, 1, 1, hour, tzinfo=UTC).timestamp() for hour in (9, 10, 11)]
>>> card = Profile()
>>> for when, cents in zip(at, (10000, 30000)):
...     card.record_transaction(when, when, 0, cents, place=None, latitude=None, longitude=None)
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c-1", type="withdrawal",
...                  amount="200.00", timestamp=datetime(2022, 1, 1, 11, tzinfo=UTC))
>>> card.advance(at[2])
>>> ctx = Context(tx, at[2], at[2], 0, 20000, profiles={"card": card})
>>> f = online_features(ctx)
>>> [f[name] for name in ("card_txn_count_1d", "card_avg_amount_1d", "card_amount_to_mean",
...                       "card_seconds_since_last")]
[2.0, 200.0, 1.0, 3600.0]
>>> len(f) == len(FEATURE_NAMES), math.isnan(f["user_txn_count_1d"])  # no user profile
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import itemgetter

from vigil.detect.context import Context
from vigil.features.risk import TerminalRisk
from vigil.features.spec import FEATURE_NAMES, FEATURES, P95, Feature
from vigil.geo import haversine_km
from vigil.profiles import Profile
from vigil.profiles.windows import N_CATEGORIES

_NAN = math.nan
_DAY = 86400.0


def online_features(ctx: Context, *, risk: TerminalRisk | None = None) -> dict[str, float]:
    """Every declared feature for the event in ``ctx``, by name, in declaration order."""
    values = [_NAN] * len(FEATURE_NAMES)
    profiles = ctx.profiles
    for plan in _PLANS:
        profile = profiles.get(plan.entity)
        if profile is not None:
            plan.read(ctx, profile, values)
    if _USER_AGE is not None and ctx.user is not None and ctx.user.created_at is not None:
        # The account's age comes from the bank's own record, not from what vigil has seen.
        values[_USER_AGE] = (ctx.start - ctx.user.created_at.timestamp()) / _DAY
    terminal = getattr(ctx.event, "terminal_id", None)
    if risk is not None and terminal is not None:
        for at, window in _RISK:
            values[at] = risk.rate(terminal, ctx.end, window)
    return dict(zip(FEATURE_NAMES, values, strict=True))


@dataclass
class _EntityPlan:
    """Where each of one entity's features goes in the output, and how to read it."""

    entity: str
    # per (window, types): its slots' getter, and the output index of its count and of its
    # mean amount (-1: not declared); one read serves both
    windows: dict[tuple[int, tuple[int, ...]], list] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)  # zscore / to_mean / to_p95 → index
    since_last: int | None = None
    km_from_last: int | None = None
    age_days: int | None = None

    def add(self, at: int, f: Feature) -> None:
        kind = f.aggregation
        if kind in ("count", "mean_amount"):
            base = f.window_index * N_CATEGORIES  # type: ignore[operator]
            slots = [base + c for c in f.category_indexes]
            # a slice for a single slot, so every getter returns a sequence to sum
            getter = (
                itemgetter(*slots) if len(slots) > 1 else itemgetter(slice(slots[0], slots[0] + 1))
            )
            entry = self.windows.setdefault((base, f.category_indexes), [getter, -1, -1])
            entry[1 if kind == "count" else 2] = at
        elif kind in ("zscore", "to_mean", "to_p95"):
            self.amounts[kind] = at
        elif kind in ("since_last", "km_from_last", "age_days"):
            setattr(self, kind, at)
        else:  # pragma: no cover - a declared aggregation without an online reader
            raise ValueError(f"aggregation: {kind!r} has no online reader for {self.entity}")

    def read(self, ctx: Context, p: Profile, values: list[float]) -> None:
        counts, sums = p.windows.counts, p.windows.sums
        for getter, count_at, mean_at in self.windows.values():
            n = sum(getter(counts))
            if count_at >= 0:
                values[count_at] = float(n)
            if mean_at >= 0 and n:
                values[mean_at] = sum(getter(sums)) / 100 / n
        if self.amounts and ctx.amount_cents is not None:
            self._amounts(ctx, p, values)
        if self.since_last is not None and p.last_time is not None:
            values[self.since_last] = ctx.start - p.last_time
        if (
            self.km_from_last is not None
            and p.last_latitude is not None
            and ctx.latitude is not None
        ):
            values[self.km_from_last] = haversine_km(
                float(p.last_latitude),
                float(p.last_longitude),  # type: ignore[arg-type]
                float(ctx.latitude),
                float(ctx.longitude),  # type: ignore[arg-type]
            )
        if self.age_days is not None and p.first_time is not None:
            values[self.age_days] = (ctx.start - p.first_time) / _DAY

    def _amounts(self, ctx: Context, p: Profile, values: list[float]) -> None:
        """z-score, ratio to mean and to p95 of the entity's earlier amounts of this type."""
        stats = p.stats.get(ctx.category)
        if stats is None or stats.n == 0:
            return
        amount = ctx.amount_cents / 100  # type: ignore[operator]
        at = self.amounts.get("zscore")
        if at is not None and stats.n > 1:
            std = stats.std
            if std > 0:
                values[at] = (amount - stats.mean) / std
        at = self.amounts.get("to_mean")
        if at is not None and stats.mean > 0:
            values[at] = amount / stats.mean
        at = self.amounts.get("to_p95")
        if at is not None:
            p95 = p.amount_quantile(ctx.category, P95)
            if p95 > 0:
                values[at] = amount / p95


def _plan() -> tuple[tuple[_EntityPlan, ...], int | None, tuple[tuple[int, float], ...]]:
    plans: dict[str, _EntityPlan] = {}
    user_age: int | None = None
    risk: list[tuple[int, float]] = []
    for at, f in enumerate(FEATURES):
        if f.aggregation == "fraud_rate":
            risk.append((at, f.window_seconds))  # type: ignore[arg-type]
        elif f.aggregation == "age_days" and f.entity == "user":
            user_age = at
        else:
            plans.setdefault(f.entity, _EntityPlan(f.entity)).add(at, f)
    return tuple(plans.values()), user_age, tuple(risk)


_PLANS, _USER_AGE, _RISK = _plan()
