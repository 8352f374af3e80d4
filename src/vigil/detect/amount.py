"""An amount far outside what this card (or account, or user) usually moves for that type.

The entity's own history (Welford mean and standard deviation, DDSketch p99) is blended with
the card's behaviour parameters from reference data, which count as ``prior_weight``
observations, so a new card is judged against what its bank knows about its holder. The
detector speaks only once the blend rests on ``min_history`` observations, and only when the
amount is both a large z-score and well above the entity's p99.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> from vigil.profiles import Profile
>>> card = Profile()
>>> for i in range(30):
...     card.record_transaction(i * 86400.0, i * 86400.0 + 60, 0, 2_000_000 + 10_000 * (i % 7),
...                             place=None, latitude=None, longitude=None)
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
...                  amount=150_000, timestamp=datetime(2022, 2, 1, tzinfo=UTC))
>>> ctx = Context(tx, 0, 0, 0, 15_000_000, profiles={"card": card})
>>> [r.code for r in AmountAnomaly().detect(ctx)]
['amount_anomaly']
"""

from __future__ import annotations

import math

from vigil.config import AmountConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.domain import Reason
from vigil.profiles import Profile
from vigil.profiles.windows import CATEGORIES, CATEGORY_INDEX

_PRIOR_FIELDS = {
    CATEGORY_INDEX["withdrawal"]: ("amount_avg_withdrawal", "amount_std_withdrawal"),
    CATEGORY_INDEX["deposit"]: ("amount_avg_deposit", "amount_std_deposit"),
    CATEGORY_INDEX["transfer"]: ("amount_avg_transfer", "amount_std_transfer"),
}
_INQUIRY = CATEGORY_INDEX["balance_inquiry"]


class AmountAnomaly:
    codes = ("amount_anomaly",)

    def __init__(self, config: AmountConfig | None = None) -> None:
        self.config = config or AmountConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        amount = ctx.amount
        if amount is None or ctx.category == _INQUIRY or amount <= 0:
            return []
        found = _judged_entity(ctx)
        if found is None:
            return []
        entity, profile = found
        cfg = self.config
        stats = profile.amount_stats(ctx.category)
        n, mean, m2 = stats.n, stats.mean, stats.m2
        prior = self._prior(ctx) if entity == "card" else None
        if prior is not None:
            # Pooled moments of the prior pseudo-sample and the observed history.
            pn, pmean, pstd = cfg.prior_weight, prior[0], prior[1]
            total = pn + n
            delta = mean - pmean
            m2 = m2 + pstd * pstd * (pn - 1) + delta * delta * pn * n / total
            mean = pmean + delta * n / total
            n = total
        if n < cfg.min_history or n < 2:
            return []
        std = math.sqrt(m2 / (n - 1))
        if std <= 0:
            std = max(mean * 0.1, 1.0)
        z = (amount - mean) / std
        if z < cfg.z_threshold:
            return []
        p99 = profile.amount_quantile(ctx.category, 0.99)
        if stats.n >= cfg.min_history and amount <= cfg.p99_ratio * p99:
            return []
        kind = CATEGORIES[ctx.category].replace("_", " ")
        p99_text = f", p99 {p99:,.0f}" if stats.n >= cfg.min_history else ""
        return [
            Reason(
                code="amount_anomaly",
                score=strength(z - cfg.z_threshold, low=0.5, high=0.95, scale=cfg.z_threshold),
                detail=f"{kind} of {amount:,.2f} is {z:.1f} standard deviations above the "
                f"{entity}'s usual {mean:,.0f} (n={n}{p99_text})",
                entity=entity,
            )
        ]

    @staticmethod
    def _prior(ctx: Context) -> tuple[float, float] | None:
        behaviour = ctx.card.behaviour if ctx.card is not None else None
        fields = _PRIOR_FIELDS.get(ctx.category)
        if behaviour is None or fields is None:
            return None
        mean, std = getattr(behaviour, fields[0]), getattr(behaviour, fields[1])
        return (mean, std) if mean > 0 else None


def _judged_entity(ctx: Context) -> tuple[str, Profile] | None:
    """The card's profile when there is a card, else the first of account and user with history."""
    card = ctx.profiles.get("card")
    if card is not None:
        return "card", card
    for entity in ("account", "user"):
        profile = ctx.profiles.get(entity)
        if profile is not None and profile.n:
            return entity, profile
    return None
