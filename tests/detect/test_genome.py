"""The flow-genome detector through the real engine: it fires on accounts far outside their
peer group, stays quiet for ordinary ones and thin groups, and its incremental percentiles
agree with a brute-force percentile over the accounts' current figures."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import count

import numpy as np
import pytest
from pydantic import ValidationError

from vigil.config import DetectorsConfig, GenomeConfig, Settings
from vigil.detect.context import Context
from vigil.detect.genome import GenomeOutlier
from vigil.domain import Transaction, User
from vigil.engine import Engine
from vigil.enrich import Enricher
from vigil.profiles import Profile
from vigil.profiles.sketch import ALPHA
from vigil.storage.reference import ReferenceData

T0 = datetime(2022, 3, 1, 8, tzinfo=UTC)
GENOME = set(GenomeOutlier.codes)


class Bank:
    """Accounts (one holder each, home country from the reference data) sending transfers."""

    def __init__(self, homes: dict[str, str], **genome) -> None:
        users = {f"u-{a}": User(user_id=f"u-{a}", country=c) for a, c in homes.items()}
        settings = Settings(detectors=DetectorsConfig(genome=GenomeConfig(**genome)))
        self.engine = Engine.in_memory(ReferenceData(users=users), settings=settings)
        self._ids = count()

    def event(self, account: str, amount: float, *, country="GB", incoming=False, day=0.0):
        n = next(self._ids)
        return {
            "kind": "transaction",
            "event_id": f"e{n}",
            "transaction_id": f"t{n}",
            "account_id": account,
            "user_id": f"u-{account}",
            "type": "transfer",
            "channel": "online",
            "direction": "credit" if incoming else "debit",
            "amount": amount,
            "counterparty_account": f"P{n}",
            "counterparty_country": country,
            "timestamp": (T0 + timedelta(days=day, seconds=n)).isoformat(),
        }

    def send(self, account: str, amount: float, **kw):
        return self.engine.process(self.event(account, amount, **kw))

    def peers(self, n: int, *, transfers: int = 5, **kw) -> None:
        """``n`` ordinary accounts p-0.. sending 1,000-1,990 ``transfers`` times each."""
        for k in range(n):
            for day in range(transfers):
                self.send(f"p-{k}", 1_000 + 10 * (k % 100), day=day, **kw)

    def group(self, key: str) -> Profile:
        return self.engine.profiles.get("peer", key)


def _homes(n: int, *extra: str, country: str = "NG") -> dict[str, str]:
    return {**{f"p-{k}": country for k in range(n)}, **dict.fromkeys(extra, country)}


def codes(*decisions) -> set[str]:
    return {r.code for d in decisions for r in d.reasons}


def test_an_account_sending_far_more_than_its_peers_fires_from_its_fifth_transfer() -> None:
    bank = Bank(_homes(150, "big"))
    bank.peers(150)
    sent = [bank.send("big", 20_000, day=d) for d in range(6)]
    assert not codes(*sent[:4]) & GENOME  # fewer than min_count transfers: no expectation yet
    assert codes(sent[4]) & GENOME == {"genome_expectation", "genome_volume"}
    (reason,) = [r for r in sent[4].reasons if r.code == "genome_expectation"]
    assert reason.entity == "account" and "debits to GB" in reason.detail
    assert "of 151 peer accounts" in reason.detail  # its own first four are in the group
    # Two facets of one observation share the configured score: weak evidence alone.
    genome = [r.score for r in sent[4].reasons if r.code in GENOME]
    assert 1 - np.prod([1 - s for s in genome]) == pytest.approx(0.3, abs=1e-5)
    assert sent[4].action == "allow"


def test_ordinary_accounts_thin_groups_and_other_countries_are_quiet() -> None:
    ghana = {f"g-{k}": "GH" for k in range(60)} | {"gh-big": "GH"}
    bank = Bank(_homes(150, "usual") | ghana)
    bank.peers(150)
    assert not codes(*(bank.send("usual", 1_500, day=d) for d in range(5))) & GENOME
    # A group of 60 has no p99 worth the name: the GH accounts are not judged by NG's.
    for k in range(60):
        for d in range(5):
            bank.send(f"g-{k}", 1_000, day=d)
    assert not codes(*(bank.send("gh-big", 50_000, day=d) for d in range(8))) & GENOME
    assert bank.group("GH").peers.flow("GB", "debit").members == 61
    assert bank.group("NG").peers.flow("GB", "debit").members == 151
    # A country the peers never trade with has no group to compare with.
    assert not codes(*(bank.send("usual", 90_000, country="AE", day=d) for d in range(8))) & GENOME


def test_a_collection_of_many_incoming_transfers_raises_genome_count() -> None:
    bank = Bank(_homes(150, "mule"))
    bank.peers(150, incoming=True, country="NG")
    inflow = [bank.send("mule", 1_200, incoming=True, country="NG", day=d / 10) for d in range(8)]
    assert not codes(*inflow[:5]) & GENOME  # five like everyone's: not above the p99
    assert "genome_count" in codes(inflow[5])
    assert "genome_expectation" not in codes(*inflow)  # its amounts are ordinary
    (reason,) = [r for r in inflow[-1].reasons if r.code == "genome_count"]
    assert "credits from NG: 8 (n=8)" in reason.detail


def test_the_decision_is_the_detector_on_the_state_before_the_event() -> None:
    bank = Bank(_homes(150, "big"))
    bank.peers(150)
    for d in range(4):
        bank.send("big", 20_000, day=d)
    raw = bank.event("big", 20_000, day=4)
    profiles = bank.engine.profiles
    before = {
        "account": Profile.from_bytes(profiles.get("account", "big").to_bytes()),
        "peer": Profile.from_bytes(bank.group("NG").to_bytes()),
    }
    members = bank.group("NG").peers.flow("GB", "debit").members
    tx = Transaction.model_validate(raw)
    ctx = Enricher(ReferenceData()).enrich(tx)
    ctx = Context(tx, ctx.start, ctx.end, ctx.category, ctx.amount_cents, profiles=before)
    expected = GenomeOutlier().detect(ctx)
    decision = bank.engine.process(raw)
    assert expected and [r for r in decision.reasons if r.code in GENOME] == expected
    assert bank.group("NG").peers.flow("GB", "debit").members == members  # replaced, not added
    assert profiles.get("account", "big").genome.flow("GB", "debit").n == 5


def test_incremental_peer_percentiles_agree_with_brute_force_over_current_figures() -> None:
    rng = np.random.default_rng(4)
    accounts = [f"a-{k}" for k in range(300)]
    bank = Bank({a: "NG" for a in accounts})
    sent: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i in range(3_000):
        account = accounts[int(rng.integers(0, len(accounts)))]
        country = ("GB", "AE", "NG")[int(rng.integers(0, 3))]
        incoming = bool(rng.integers(0, 2))
        cents = int(rng.lognormal(11, 1.2))
        bank.send(account, cents / 100, country=country, incoming=incoming, day=i / 100)
        sent[(account, country, "credit" if incoming else "debit")].append(cents)
    group = bank.group("NG").peers
    checked = 0
    for country in ("GB", "AE", "NG"):
        for direction in ("debit", "credit"):
            cells = [
                np.array(v) / 100 for (_, c, d), v in sent.items() if (c, d) == (country, direction)
            ]
            figures = {
                "expectation": [c.mean() for c in cells],
                "volume": [c.sum() for c in cells],
                "count": [float(len(c)) for c in cells],
            }
            peers = group.flow(country, direction)
            assert peers.members == len(cells)
            for name, values in figures.items():
                sketch = getattr(peers, name)
                for q in (0.1, 0.5, 0.9, 0.99):
                    # The sketch answers the value of rank floor(q (n - 1)) within alpha.
                    exact = float(np.quantile(values, q, method="lower"))
                    assert sketch.quantile(q) == pytest.approx(exact, rel=ALPHA), (name, q)
                    checked += 1
    assert checked == 6 * 3 * 4


def test_configuration_is_checked_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="percentile"):
        GenomeConfig(percentile=1.0)
    with pytest.raises(ValidationError, match="min_peers"):
        GenomeConfig(min_peers=1)
