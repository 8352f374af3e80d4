"""Withdrawals over the card's extract limit, in one go or summed over the day.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Card, Transaction
>>> from vigil.profiles import Profile
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
...                  amount=60_000, timestamp=datetime(2022, 2, 1, tzinfo=UTC))
>>> ctx = Context(tx, 0, 0, 0, 6_000_000, card=Card(card_id="c", extract_limit=50_000),
...               profiles={"card": Profile()})
>>> [r.code for r in ExtractLimit().detect(ctx)]
['extract_limit']
"""

from __future__ import annotations

from vigil.config import ExtractLimitConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.domain import Reason
from vigil.profiles.windows import CATEGORY_INDEX, WINDOW_INDEX

_WITHDRAWAL = CATEGORY_INDEX["withdrawal"]
_DAY = WINDOW_INDEX["1d"]


class ExtractLimit:
    codes = ("extract_limit", "extract_limit_daily")

    def __init__(self, config: ExtractLimitConfig | None = None) -> None:
        self.config = config or ExtractLimitConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        card = ctx.card
        if ctx.category != _WITHDRAWAL or ctx.amount_cents is None or card is None:
            return []
        limit = card.extract_limit
        if not limit:
            return []
        amount = ctx.amount_cents / 100
        if amount > limit:
            return [
                Reason(
                    code="extract_limit",
                    score=strength(amount / limit - 1, low=0.9, high=0.99),
                    detail=f"withdrawal of {amount:,.2f} exceeds the card's extract limit "
                    f"{limit:,.2f}",
                    entity="card",
                )
            ]
        profile = ctx.profiles.get("card")
        if profile is None:
            return []
        daily_limit = limit * self.config.daily_ratio
        today = profile.moved(_DAY, _WITHDRAWAL, ctx.end) / 100 + amount
        if today <= daily_limit:
            return []
        count = profile.windows.count(_DAY, _WITHDRAWAL) + 1
        today_ops = profile.recent.since(profile.windows.edge(_DAY, ctx.end), (_WITHDRAWAL,))
        return [
            Reason(
                code="extract_limit_daily",
                score=strength(today / daily_limit - 1, low=self.config.daily_score, high=0.95),
                detail=f"{count} withdrawals totalling {today:,.2f} in 24 h exceed the daily "
                f"limit {daily_limit:,.2f}",
                entity="card",
                evidence=tuple(e.transaction_id for e in today_ops if e.transaction_id),
            )
        ]
