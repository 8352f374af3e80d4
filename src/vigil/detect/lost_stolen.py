"""Lost or stolen card: withdrawals at several different ATMs within hours.

A thief with a card and its PIN drives from ATM to ATM taking as much as each will give. The
card's holder withdraws about ``withdrawal_day`` times a day (behaviour parameters, or its own
last 30 days), at a handful of usual ATMs. Three or more withdrawals at as many different ATMs
within ``window_hours``, when that many withdrawals are improbable for the card, is the
signature; earlier withdrawals that already add up to most of the extract limit lower the bar.
The reason names the earlier withdrawals of the spree as evidence.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Card, Transaction
>>> from vigil.profiles import Profile
>>> card = Profile()
>>> for i, atm in enumerate(["A", "B", "C"]):
...     card.advance(i * 1800.0)
...     card.record_transaction(i * 1800.0, i * 1800.0 + 120, 0, 45_000_00, place=atm,
...                             latitude=6.5, longitude=3.4, transaction_id=f"t{i}")
>>> card.advance(5400.0)
>>> tx = Transaction(event_id="e", transaction_id="t3", card_id="c", type="withdrawal",
...                  phase="start", terminal_id="D", timestamp=datetime(2022, 2, 1, tzinfo=UTC))
>>> ctx = Context(tx, 5400.0, 5400.0, 0, None, place="D", profiles={"card": card},
...               card=Card(card_id="c", extract_limit=50_000), card_present=True)
>>> [(r.code, r.evidence) for r in LostStolenCard().detect(ctx)]
[('lost_stolen_card', ('t0', 't1', 't2'))]
"""

from __future__ import annotations

import math

from vigil.config import LostStolenConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.detect.velocity import poisson_tail, usual_per_day
from vigil.domain import Reason
from vigil.profiles.windows import CATEGORY_INDEX

_WITHDRAWAL = CATEGORY_INDEX["withdrawal"]


class LostStolenCard:
    codes = ("lost_stolen_card",)

    def __init__(self, config: LostStolenConfig | None = None) -> None:
        self.config = config or LostStolenConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        cfg = self.config
        if ctx.category != _WITHDRAWAL or not ctx.begins or not ctx.card_present:
            return []
        card = ctx.profiles.get("card")
        if card is None or ctx.place is None:
            return []
        spree = card.recent.since(ctx.start - cfg.window_hours * 3600, (_WITHDRAWAL,))
        atms = {e.place for e in spree if e.place is not None} | {ctx.place}
        if len(atms) < cfg.min_atms:
            return []
        k = len(spree) + 1
        behaviour = ctx.card.behaviour if ctx.card is not None else None
        per_day = usual_per_day(
            card,
            ctx.start,
            (_WITHDRAWAL,),
            prior=behaviour.withdrawal_day if behaviour is not None else 0.0,
            floor=cfg.min_rate_per_day,
        )
        lam = per_day * cfg.window_hours / cfg.active_hours
        p = poisson_tail(k, lam)
        taken = sum(e.amount_cents for e in spree) / 100
        limit = ctx.card.extract_limit if ctx.card is not None else None
        drained = bool(limit) and taken >= cfg.drained_share * limit
        if p >= (cfg.drained_tail_probability if drained else cfg.tail_probability):
            return []
        excess = math.log10(cfg.drained_tail_probability / max(p, 1e-300))
        share = f", {taken / limit:.0%} of its extract limit" if limit else ""
        return [
            Reason(
                code="lost_stolen_card",
                score=strength(excess, low=0.6 if drained else 0.5, high=0.95, scale=3.0),
                detail=f"withdrawal {k} at {len(atms)} different ATMs within "
                f"{cfg.window_hours:g} h (usual {per_day:.1f} a day); {taken:,.2f} taken "
                f"already{share}",
                entity="card",
                evidence=tuple(e.transaction_id for e in spree if e.transaction_id),
            )
        ]
