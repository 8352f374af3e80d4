"""The flow genome and its peer-group statistics: exact figures, bounded size, round trips."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from vigil.profiles import Profile
from vigil.profiles.genome import FlowGenome
from vigil.profiles.peers import PeerGroup
from vigil.profiles.sketch import ALPHA


def test_cells_hold_exact_figures_of_their_amounts() -> None:
    g = FlowGenome()
    amounts = [120_00, 80_50, 300_00, 99_99]
    for i, a in enumerate(amounts):
        g.add("GB", "debit", a, when=float(i))
    g.add("GB", "credit", 5_00, when=9.0)
    flow = g.flow("GB", "debit")
    values = np.array(amounts) / 100
    assert flow.n == 4 and flow.volume == pytest.approx(values.sum(), abs=1e-9)
    assert flow.mean == pytest.approx(values.mean()) and flow.std == pytest.approx(
        values.std(ddof=1)
    )
    assert g.flow("GB", "credit").n == 1 and g.flow("US", "debit") is None
    with pytest.raises(ValueError, match="direction: 'sideways'"):
        g.add("GB", "sideways", 1, when=0.0)


def test_preview_is_what_add_then_gives_and_changes_nothing() -> None:
    g = FlowGenome()
    g.add("AE", "debit", 1_000_00, when=0.0)
    before = g.to_state()
    preview = g.preview("AE", "debit", 3_000_00)
    assert g.to_state() == before
    (change,) = g.add("AE", "debit", 3_000_00, when=1.0)
    assert change.after == preview and change.before.n == 1


def test_a_new_country_beyond_capacity_evicts_the_least_used_both_directions() -> None:
    g = FlowGenome(capacity=2)
    for _ in range(3):
        g.add("NG", "debit", 10_00, when=0.0)
    g.add("GB", "debit", 10_00, when=1.0)
    g.add("GB", "credit", 10_00, when=2.0)  # GB: 2 transfers, NG: 3
    changes = g.add("US", "debit", 10_00, when=3.0)
    assert g.countries() == {"NG", "US"}
    evicted = {(c.country, c.direction) for c in changes if c.after is None}
    assert evicted == {("GB", "debit"), ("GB", "credit")}
    # A known country never evicts.
    assert all(c.after is not None for c in g.add("NG", "credit", 1_00, when=4.0))
    assert len(g) == 3


def test_peer_group_replaces_an_accounts_contribution() -> None:
    group = PeerGroup()
    a, b = FlowGenome(), FlowGenome()
    for amount in (100_00, 500_00, 900_00):  # a's E moves 100 → 300 → 500
        group.apply(a.add("GB", "debit", amount, when=0.0))
    group.apply(b.add("GB", "debit", 50_00, when=0.0))
    cell = group.flow("GB", "debit")
    assert cell.members == 2
    assert cell.expectation.quantile(1.0) == pytest.approx(500, rel=ALPHA)
    assert cell.count.quantile(1.0) == pytest.approx(3, rel=ALPHA)
    assert cell.volume.quantile(0.0) == pytest.approx(50, rel=ALPHA)
    # Evicting the account's only country takes it out of the group; the empty cell goes.
    small = FlowGenome(capacity=1)
    group.apply(small.add("US", "credit", 1_00, when=0.0))
    group.apply(small.add("FR", "credit", 1_00, when=1.0))
    assert group.flow("US", "credit") is None and group.flow("FR", "credit").members == 1


def test_lost_peer_state_is_rebuilt_from_the_next_changes_without_error() -> None:
    g = FlowGenome()
    g.add("GB", "debit", 10_00, when=0.0)
    group = PeerGroup()  # the group's state was lost: the old figure is not in it
    group.apply(g.add("GB", "debit", 30_00, when=1.0))
    assert group.flow("GB", "debit").members == 1


def test_profile_round_trips_genome_and_peers_and_reads_version_2() -> None:
    account, peer = Profile(top_k=3), Profile()
    for i in range(5):
        peer.peer_group().apply(account.record_flow("GB", "debit", 100_00 * i, i, group="NG"))
    data = account.to_bytes()
    back = Profile.from_bytes(data)
    assert back.to_bytes() == data
    assert back.genome.flow("GB", "debit") == account.genome.flow("GB", "debit")
    assert back.genome.capacity == 3 and back.genome.group == "NG"
    peer_back = Profile.from_bytes(peer.to_bytes())
    assert peer_back.peers.to_state() == peer.peers.to_state()
    # A profile written before the genome existed (version 2) still loads, with no genome.
    old = Profile().to_state()[:18]
    old[0] = 2
    loaded = Profile.from_bytes(msgpack.packb(old, use_bin_type=True))
    assert loaded.genome is None and loaded.peers is None
    old[0] = 1
    with pytest.raises(ValueError, match="profile state version 1"):
        Profile.from_state(old)


def test_moving_to_another_group_brings_the_accounts_cells() -> None:
    account = Profile()
    account.record_flow("GB", "debit", 10_00, 0.0, group="*")
    changes = account.record_flow("GB", "debit", 30_00, 1.0, group="NG")
    ng = PeerGroup()
    ng.apply(changes)
    cell = ng.flow("GB", "debit")
    assert account.genome.group == "NG" and cell.members == 1
    assert cell.count.quantile(0.5) == pytest.approx(2, rel=ALPHA)
