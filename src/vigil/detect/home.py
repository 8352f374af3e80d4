"""Far from home: a card used farther from its holder's home than its history makes normal.

Each card remembers the farthest from home it has been used (on allowed, card-present
events). A card that has only ever been used around town and suddenly appears hundreds of
kilometres away is worth a look, not a block: people travel. So the reason is weak alone and
strengthens other evidence (a large amount, an unfamiliar terminal, a burst).

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> from vigil.profiles import Profile
>>> card = Profile()
>>> card.n, card.farthest = 30, 12.0
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
...                  phase="start", timestamp=datetime(2022, 2, 1, tzinfo=UTC))
>>> ctx = Context(tx, 0, 0, 0, None, profiles={"card": card}, card_present=True, home_km=480.0)
>>> [(r.code, r.score) for r in FarFromHome().detect(ctx)]
[('far_from_home', 0.45)]
"""

from __future__ import annotations

import math

from vigil.config import FarFromHomeConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.domain import Reason


class FarFromHome:
    codes = ("far_from_home",)

    def __init__(self, config: FarFromHomeConfig | None = None) -> None:
        self.config = config or FarFromHomeConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        km = ctx.home_km
        if km is None or not ctx.begins:
            return []
        card = ctx.profiles.get("card")
        cfg = self.config
        if card is None or card.n < cfg.min_history:
            return []
        usual = max(card.farthest, cfg.min_km / cfg.ratio)
        if km < cfg.min_km or km < cfg.ratio * usual:
            return []
        return [
            Reason(
                code="far_from_home",
                score=strength(
                    math.log2(km / (cfg.ratio * usual)),
                    low=cfg.score,
                    high=cfg.max_score,
                    scale=2.0,
                ),
                detail=f"{km:,.0f} km from the card's home; it has never been used more than "
                f"{card.farthest:,.0f} km away",
                entity="card",
            )
        ]
