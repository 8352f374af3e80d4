"""The first transfer to a new counterparty, or to a new counterparty country, with a large amount.

A new payee is everyday life; a new payee *and* an amount above what the account usually
sends is how an account takeover or a mule's forward looks. "Large" is judged against the
p95 of the account's (else the user's) transfers, and only once that history holds
``min_history`` transfers, so a young account's first payees are never flagged. The plain
"amount far above usual" question, for every type, is :mod:`vigil.detect.amount`'s; this
detector asks it only about money leaving for somewhere new.

Counterparties count as known when the account sent money to them or received money from
them; the account holder's home country is never new.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> from vigil.profiles import Profile
>>> from vigil.profiles.windows import CATEGORY_INDEX
>>> account = Profile()
>>> for k in range(12):
...     account.record_transaction(k * 86400.0, k * 86400.0, CATEGORY_INDEX["transfer"],
...                                1_000_000 + 10_000 * k, place=None, latitude=None,
...                                longitude=None, attributes=(("counterparty", "NG-1"),
...                                ("counterparty_country", "NG")))
>>> tx = Transaction(event_id="e", transaction_id="t", account_id="a", type="transfer",
...                  channel="online", amount=25_000, counterparty_account="AE-77",
...                  counterparty_country="AE", timestamp=datetime(2022, 2, 1, tzinfo=UTC))
>>> ctx = Context(tx, 0, 0, CATEGORY_INDEX["transfer"], 2_500_000, profiles={"account": account})
>>> [r.code for r in NewCounterpartyTransfer().detect(ctx)]
['new_counterparty_country_large']
"""

from __future__ import annotations

from vigil.config import TransferConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.domain import Direction, Reason, Transaction
from vigil.profiles import Profile
from vigil.profiles.windows import CATEGORY_INDEX

_TRANSFER = CATEGORY_INDEX["transfer"]


class NewCounterpartyTransfer:
    codes = ("new_counterparty_country_large", "new_counterparty_large")

    def __init__(self, config: TransferConfig | None = None) -> None:
        self.config = config or TransferConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        event = ctx.event
        amount = ctx.amount
        if (
            ctx.category != _TRANSFER
            or amount is None
            or not isinstance(event, Transaction)
            or event.direction is not Direction.DEBIT
        ):
            return []
        cfg = self.config
        found = self._history(ctx)
        if found is None:
            return []
        entity, profile = found
        country = event.counterparty_country
        home = ctx.user.country if ctx.user is not None else None
        new_country = (
            country is not None
            and country != home
            and profile.seen_count("counterparty_country") > 0
            and not profile.has_seen("counterparty_country", country)
        )
        payee = event.counterparty_account
        new_payee = (
            payee is not None
            and profile.seen_count("counterparty") > 0
            and not profile.has_seen("counterparty", payee)
        )
        if not (new_country or new_payee):
            return []
        p95 = profile.amount_quantile(_TRANSFER, 0.95)
        if not p95 > 0:
            return []
        ratio = amount / p95
        n = profile.amount_stats(_TRANSFER).n
        if new_country and ratio > cfg.country_p95_ratio:
            code, base, needed = (
                "new_counterparty_country_large",
                cfg.country_score,
                cfg.country_p95_ratio,
            )
            what = f"first transfer to {country}"
        elif new_payee and ratio > cfg.counterparty_p95_ratio:
            code, base, needed = (
                "new_counterparty_large",
                cfg.counterparty_score,
                cfg.counterparty_p95_ratio,
            )
            what = "first transfer to this counterparty"
        else:
            return []
        return [
            Reason(
                code=code,
                # Up to 0.3 more as the amount reaches several times the threshold.
                score=strength(ratio / needed - 1, low=base, high=min(0.95, base + 0.3), scale=3),
                detail=f"{what}: {amount:,.2f} is {ratio:.1f}x the {entity}'s p95 transfer "
                f"of {p95:,.0f} (n={n})",
                entity=entity,
            )
        ]

    def _history(self, ctx: Context) -> tuple[str, Profile] | None:
        """The account's transfer history, else the user's, when long enough to judge by."""
        for entity in ("account", "user"):
            profile = ctx.profiles.get(entity)
            if profile is not None and profile.amount_stats(_TRANSFER).n >= self.config.min_history:
                return entity, profile
        return None
