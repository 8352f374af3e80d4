"""Money-mule flows: many incoming transfers in a day (fan-in), then the money sent on.

A mule account receives small transfers from many accounts within hours and forwards most of
the total soon after, often abroad. Two reasons:

- ``fan_in``: the incoming transfers of the last day, this one included, are more than the
  account's usual rate makes plausible (Poisson tail, like :mod:`vigil.detect.velocity`);
- ``pass_through``: an outgoing transfer to a payee the account has not paid before brings
  what the account sent on today to at least ``pass_through_share`` of a day's unusual inflow.

Both name the incoming transfers as evidence.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> from vigil.profiles import Profile
>>> from vigil.profiles.windows import CATEGORY_INDEX
>>> account = Profile()
>>> for i in range(8):
...     account.advance(i * 3600.0)
...     account.record_transaction(i * 3600.0, i * 3600.0, CATEGORY_INDEX["transfer_in"], 500_00,
...                                place=None, latitude=None, longitude=None,
...                                transaction_id=f"in-{i}")
>>> account.advance(9 * 3600.0)
>>> out = Transaction(event_id="e", transaction_id="out", account_id="a", type="transfer",
...                   amount=3_600, counterparty_country="GB", channel="online",
...                   timestamp=datetime(2022, 2, 1, tzinfo=UTC))
>>> ctx = Context(out, 9 * 3600.0, 9 * 3600.0, CATEGORY_INDEX["transfer"], 3_600_00,
...               profiles={"account": account})
>>> [(r.code, len(r.evidence)) for r in MoneyMule().detect(ctx)]
[('pass_through', 8)]
"""

from __future__ import annotations

import math

from vigil.config import MuleConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.detect.velocity import poisson_tail, usual_per_day
from vigil.domain import Reason
from vigil.profiles import Profile
from vigil.profiles.windows import CATEGORY_INDEX, WINDOW_INDEX

_IN = CATEGORY_INDEX["transfer_in"]
_OUT = CATEGORY_INDEX["transfer"]
_DAY = WINDOW_INDEX["1d"]


class MoneyMule:
    codes = ("fan_in", "pass_through")

    def __init__(self, config: MuleConfig | None = None) -> None:
        self.config = config or MuleConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        if ctx.category not in (_IN, _OUT) or ctx.amount_cents is None:
            return []
        account = ctx.profiles.get("account") or ctx.profiles.get("user")
        if account is None:
            return []
        if ctx.category == _IN:
            return self._fan_in(ctx, account)
        return self._pass_through(ctx, account)

    def _inflow_chance(self, ctx: Context, account: Profile, k: int) -> tuple[float, float]:
        """(usual incoming transfers a day, chance of ``k`` or more in one day)."""
        per_day = usual_per_day(account, ctx.start, (_IN,), floor=self.config.min_rate_per_day)
        return per_day, poisson_tail(k, per_day)

    def _evidence(self, ctx: Context, account: Profile) -> tuple[str, ...]:
        inflow = account.recent.since(account.windows.edge(_DAY, ctx.end), (_IN,))
        return tuple(e.transaction_id for e in inflow if e.transaction_id)

    def _fan_in(self, ctx: Context, account: Profile) -> list[Reason]:
        cfg = self.config
        k = account.windows.count(_DAY, _IN) + 1
        if k < cfg.fan_in_min_count:
            return []
        per_day, p = self._inflow_chance(ctx, account, k)
        if p >= cfg.tail_probability:
            return []
        return [
            Reason(
                code="fan_in",
                score=strength(
                    math.log10(cfg.tail_probability / max(p, 1e-300)), low=0.5, high=0.8, scale=4
                ),
                detail=f"{k} incoming transfers in 24 h against a usual {per_day:.2f} a day "
                f"(chance {p:.1e})",
                entity="account",
                evidence=self._evidence(ctx, account),
            )
        ]

    def _pass_through(self, ctx: Context, account: Profile) -> list[Reason]:
        cfg = self.config
        k = account.windows.count(_DAY, _IN)
        if k < cfg.pass_through_min_inflows:
            return []
        # Paying a usual payee (rent, a supplier) after receiving money is ordinary life.
        payee = getattr(ctx.event, "counterparty_account", None)
        if payee is not None and account.has_seen("counterparty", payee):
            return []
        inflow = account.moved(_DAY, _IN, ctx.end)
        # What has left today counts too: mules split the forwarding into a few transfers.
        sent = account.moved(_DAY, _OUT, ctx.end) + (ctx.amount_cents or 0)
        share = sent / inflow if inflow else 0.0
        if share < cfg.pass_through_share:
            return []
        per_day, p = self._inflow_chance(ctx, account, k)
        if p >= cfg.pass_through_tail_probability:
            return []
        return [
            Reason(
                code="pass_through",
                score=0.9,
                detail=f"sent on {share:.0%} of {inflow / 100:,.2f} received in {k} incoming "
                f"transfers within 24 h (usual {per_day:.2f} a day)",
                entity="account",
                evidence=self._evidence(ctx, account),
            )
        ]
