"""The flow genome against the peer group: an account far outside what its peers do.

Per counterparty country × direction an account has a flow genome (:mod:`vigil.profiles.genome`:
expectation E, SD, volume, count N), and the accounts of its holder's home country have,
for the same cell, incrementally kept percentiles of their current E, volume and N
(:mod:`vigil.profiles.peers`). A transfer whose cell, this transfer included, puts the account
above the group's ``percentile`` raises:

- ``genome_expectation``: its mean amount E to (or from) that country;
- ``genome_volume``: the total it has moved that way;
- ``genome_count``: how many transfers it has made that way (a mule collecting from many).

The account's cell is read as it was before the event and this amount added to a copy (as
velocity counts "this operation included"); the peer percentiles are the group's as it was
before the event. Both are judged only with ``min_count`` transfers in the cell and
``min_peers`` accounts in the group. The figures are lifetime ones, for the account and its
peers alike, so an old account ranks above a young one doing the same; by construction one
account in a hundred is above a p99, which is why the evidence is weak alone. The three
are facets of one observation (an account busy with a country moves more and more often), not
independent evidence: when several fire they share ``score``, each carrying
``1 - (1 - score) ** (1 / k)`` so that the policy's noisy-OR of them is ``score`` itself.
A percentile is the sketch's, within its relative error ``alpha`` (1 %).

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> from vigil.profiles import Profile
>>> peer = Profile()
>>> for k in range(120):                       # 120 accounts sending 1,000-2,190 to GB
...     peers_account = Profile()
...     for _ in range(5):
...         changes = peers_account.record_flow("GB", "debit", 100_000 + 1_000 * k, 0.0,
...                                             group="NG")
...         peer.peer_group().apply(changes)
>>> account = Profile()
>>> for _ in range(5):
...     peer.peer_group().apply(account.record_flow("GB", "debit", 900_000, 0.0, group="NG"))
>>> tx = Transaction(event_id="e", transaction_id="t", account_id="a", type="transfer",
...                  channel="online", amount=9_000, counterparty_country="GB",
...                  timestamp=datetime(2022, 2, 1, tzinfo=UTC))
>>> ctx = Context(tx, 0, 0, 2, 900_000, profiles={"account": account, "peer": peer})
>>> [r.code for r in GenomeOutlier().detect(ctx)]
['genome_expectation', 'genome_volume', 'genome_count']
"""

from __future__ import annotations

from vigil.config import GenomeConfig
from vigil.detect.context import Context
from vigil.domain import Reason, Transaction
from vigil.profiles.genome import FlowGenome


class GenomeOutlier:
    codes = ("genome_expectation", "genome_volume", "genome_count")

    def __init__(self, config: GenomeConfig | None = None) -> None:
        self.config = config or GenomeConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        event = ctx.event
        if (
            not isinstance(event, Transaction)
            or ctx.amount_cents is None
            or event.counterparty_country is None
            or event.direction is None
        ):
            return []
        account = ctx.profiles.get("account")
        peer = ctx.profiles.get("peer")
        if account is None or peer is None or peer.peers is None:
            return []
        cfg = self.config
        country, direction = event.counterparty_country, event.direction.value
        peers = peer.peers.flow(country, direction)
        if peers is None or peers.members < cfg.min_peers:
            return []
        flow = (account.genome or FlowGenome()).preview(country, direction, ctx.amount_cents)
        if flow.n < cfg.min_count:
            return []
        way = f"{direction}s {'to' if direction == 'debit' else 'from'} {country}"
        among = f"of {peers.members} peer accounts"
        reasons: list[tuple[str, str]] = []
        for code, value, sketch, what in (
            ("genome_expectation", flow.mean, peers.expectation, "mean"),
            ("genome_volume", flow.volume, peers.volume, "volume"),
            ("genome_count", float(flow.n), peers.count, "count"),
        ):
            bar = sketch.quantile(cfg.percentile)
            if value > bar:
                shown = f"{flow.n}" if code == "genome_count" else f"{value:,.2f}"
                limit = f"{bar:,.0f}" if code == "genome_count" else f"{bar:,.2f}"
                detail = (
                    f"{what} of {way}: {shown} (n={flow.n}) is above the "
                    f"p{cfg.percentile * 100:g} {limit} {among}"
                )
                reasons.append((code, detail))
        if not reasons:
            return []
        share = 1.0 - (1.0 - cfg.score) ** (1.0 / len(reasons))
        return [
            Reason(code=code, score=round(share, 6), detail=detail, entity="account")
            for code, detail in reasons
        ]
