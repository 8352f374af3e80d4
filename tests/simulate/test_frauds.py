"""Every injected episode really has the property its label claims."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vigil.geo import haversine_km
from vigil.simulate import PATTERNS, BankConfig, generate
from vigil.simulate.frauds import allocate

from .conftest import Generated

HOUR = timedelta(hours=1)


def _card(generated: Generated, card_id: str) -> dict:
    return generated.cards.filter(pl.col("number_id") == card_id).row(0, named=True)


def _episodes(frame: pl.DataFrame, key: str) -> dict[str, pl.DataFrame]:
    return {k[0]: g.sort("timestamp") for k, g in frame.group_by(key)}


def _atm_position(generated: Generated) -> dict[str, tuple[float, float]]:
    return {
        r["ATM_id"]: (r["loc_latitude"], r["loc_longitude"])
        for r in generated.atms.iter_rows(named=True)
    }


def test_labels_reference_existing_events(generated: Generated) -> None:
    labels, events = generated.labels, generated.events
    assert labels["event_id"].n_unique() == labels.height
    joined = labels.join(events.select("event_id", "transaction_id", "kind"), on="event_id")
    assert joined.height == labels.height
    tx = joined.filter(pl.col("kind") == "transaction")
    assert (tx["transaction_id"] == tx["transaction_id_right"]).all()
    assert joined.filter(pl.col("kind") == "login")["transaction_id"].null_count() == (
        joined.filter(pl.col("kind") == "login").height
    )
    # Every event of a labelled transaction is labelled: both phases of two-phase ones.
    ids = labels["transaction_id"].drop_nulls().implode()
    phases = events.filter(pl.col("transaction_id").is_in(ids))
    assert set(phases["event_id"]) <= set(labels["event_id"])
    assert (
        phases.filter(pl.col("phase") == "start").height
        == phases.filter(pl.col("phase") == "end").height
        > 0
    )
    assert set(labels["pattern"]) == set(PATTERNS)
    assert generated.summary.labelled_events == labels.height


def test_each_episode_has_its_own_victim(generated: Generated) -> None:
    labelled = generated.labels.join(generated.events, on="event_id")
    victims = labelled.group_by("user_id").agg(pl.col("pattern").n_unique())
    assert (victims["pattern"] == 1).all()
    assert victims.height == sum(generated.summary.frauds.values())


def test_card_cloning(generated: Generated) -> None:
    where = _atm_position(generated)
    all_atm = generated.atm_transactions().sort("start")
    clones = generated.labelled("card_cloning")
    assert clones.height >= 8
    for clone in clones.iter_rows(named=True):
        assert clone["type"] == "withdrawal"
        before = all_atm.filter(
            (pl.col("card_id") == clone["card_id"]) & (pl.col("start") < clone["started_at"])
        )
        previous = before.row(before.height - 1, named=True)
        km = haversine_km(*where[previous["terminal_id"]], *where[clone["terminal_id"]])
        hours = (clone["started_at"] - previous["end"]).total_seconds() / 3600
        assert km >= 300
        assert 0 < hours < km / 500  # sooner than 500 km/h allows
        assert 30 <= (clone["timestamp"] - clone["started_at"]).total_seconds() <= 90
        assert 1.8 <= clone["amount"] / previous["amount"] <= 2.2
        assert clone["terminal_id"].startswith("EXT-")


def test_card_cloning_adds_a_far_atm_when_all_are_close(tmp_path: Path) -> None:
    # One internal ATM only: every clone needs an external ATM in a distant city.
    cfg = BankConfig(
        seed=2, cards=200, days=20, atms_internal=1, atms_external=0, fraud_rate=0.05,
        pattern_weights={"card_cloning": 1.0},
    )  # fmt: skip
    summary = generate(cfg, tmp_path)
    assert summary.frauds["card_cloning"] == 10
    atms = pl.read_csv(tmp_path / "atm.csv")
    home = atms.filter(pl.col("ATM_id") == "VGB-1").row(0, named=True)
    added = atms.filter(pl.col("ATM_id").str.starts_with("EXT-"))
    assert 1 <= added.height <= 3
    lat, lon = added["loc_latitude"].to_numpy(), added["loc_longitude"].to_numpy()
    km = haversine_km(home["loc_latitude"], home["loc_longitude"], lat, lon)
    assert (km >= 300).all()
    external = pl.read_csv(tmp_path / "atm-bank-external.csv")
    assert set(external["ATM_id"]) == set(added["ATM_id"])


def test_lost_stolen_card(generated: Generated) -> None:
    frame = generated.labelled("lost_stolen_card")
    episodes = _episodes(frame, "card_id")
    assert len(episodes) >= 8
    for card_id, ep in episodes.items():
        limit = _card(generated, card_id)["extract_limit"]
        assert 3 <= ep.height <= 6
        assert (ep["type"] == "withdrawal").all()
        assert ep["terminal_id"].n_unique() == ep.height
        assert ep["timestamp"].max() - ep["started_at"].min() <= 6 * HOUR
        assert (ep["amount"] >= 0.8 * limit).all()
        assert ep["amount"].sum() > limit  # the burst empties more than a day's limit


def test_account_takeover(generated: Generated) -> None:
    labelled = generated.labelled("account_takeover")
    events = generated.events
    episodes = _episodes(labelled, "user_id")
    assert len(episodes) >= 8
    for user_id, ep in episodes.items():
        login = ep.filter(pl.col("kind") == "login").row(0, named=True)
        transfers = ep.filter(pl.col("kind") == "transaction")
        earlier = events.filter(
            (pl.col("user_id") == user_id) & (pl.col("timestamp") < login["timestamp"])
        )
        earlier_logins = earlier.filter(pl.col("kind") == "login")
        assert earlier_logins.height > 0
        assert login["success"] and login["country"] != "NG"
        assert login["country"] not in set(events.filter(
            (pl.col("user_id") == user_id) & (pl.col("kind") == "login")
            & (pl.col("event_id") != login["event_id"])
        )["country"])  # fmt: skip
        assert login["device_id"] not in set(earlier["device_id"].drop_nulls())
        assert 1 <= transfers.height <= 3
        assert (transfers["type"] == "transfer").all()
        assert (transfers["channel"] == "online").all()
        assert (transfers["direction"] == "debit").all()
        assert (transfers["device_id"] == login["device_id"]).all()
        assert (transfers["ip"] == login["ip"]).all()
        assert (transfers["timestamp"] > login["timestamp"]).all()
        assert (transfers["timestamp"] - login["timestamp"]).max() <= HOUR
        assert (transfers["counterparty_country"] != "NG").all()
        known = set(
            earlier.filter(pl.col("type") == "transfer")["counterparty_account"].drop_nulls()
        )
        assert not set(transfers["counterparty_account"]) & known
        avg = _card(generated, user_id.replace("u-", "c-"))["amount_avg_transfer"]
        assert (transfers["amount"] >= 3 * avg - 0.01).all()


def test_amount_spike(generated: Generated) -> None:
    episodes = _episodes(generated.labelled("amount_spike"), "card_id")
    assert len(episodes) >= 8
    for card_id, ep in episodes.items():
        assert ep.height == 1
        tx = ep.row(0, named=True)
        card = _card(generated, card_id)
        usual = card[
            {"transfer": "amount_avg_transfer", "deposit": "amount_avg_deposit"}[tx["type"]]
        ]
        assert 5.0 <= tx["amount"] / usual <= 10.0
        assert tx["channel"] == "atm"


def test_velocity_burst(generated: Generated) -> None:
    episodes = _episodes(generated.labelled("velocity_burst"), "card_id")
    assert len(episodes) >= 8
    for card_id, ep in episodes.items():
        avg = _card(generated, card_id)["amount_avg_withdrawal"]
        assert 8 <= ep.height <= 15
        assert ep["timestamp"].max() - ep["started_at"].min() <= HOUR
        assert ep["terminal_id"].n_unique() <= 2
        assert (ep["amount"] <= 0.25 * avg).all()
        # Consecutive operations of the burst do not overlap.
        starts, ends = ep["started_at"].to_list(), ep["timestamp"].to_list()
        assert all(s > e for s, e in zip(starts[1:], ends[:-1], strict=True))


def test_extract_limit_breach(generated: Generated) -> None:
    episodes = _episodes(generated.labelled("extract_limit_breach"), "card_id")
    assert len(episodes) >= 8
    for card_id, ep in episodes.items():
        assert ep.height == 1
        tx = ep.row(0, named=True)
        assert tx["type"] == "withdrawal"
        assert tx["amount"] > _card(generated, card_id)["extract_limit"]


def test_money_mule(generated: Generated) -> None:
    episodes = _episodes(generated.labelled("money_mule"), "account_id")
    assert len(episodes) >= 8
    for _, ep in episodes.items():
        assert (ep["type"] == "transfer").all()
        incoming = ep.filter(pl.col("direction") == "credit")
        outgoing = ep.filter(pl.col("direction") == "debit")
        assert 10 <= incoming.height <= 20
        assert incoming["counterparty_account"].n_unique() == incoming.height
        assert incoming["timestamp"].max() - incoming["timestamp"].min() <= 24 * HOUR
        assert 1 <= outgoing.height <= 2
        assert (outgoing["counterparty_country"] != "NG").all()
        assert (outgoing["timestamp"] > incoming["timestamp"].max()).all()
        assert outgoing["timestamp"].max() - incoming["timestamp"].max() <= 6 * HOUR
        received, sent = incoming["amount"].sum(), outgoing["amount"].sum()
        assert 0.5 * received < sent <= received


def test_allocation_is_proportional_and_complete() -> None:
    even = allocate(20, dict.fromkeys(PATTERNS, 1.0))
    assert sum(even.values()) == 20 and max(even.values()) - min(even.values()) <= 1
    skewed = allocate(100, {"card_cloning": 3.0, "money_mule": 1.0})
    assert skewed == {"card_cloning": 75, "money_mule": 25}
    assert allocate(0, {"card_cloning": 1.0}) == {"card_cloning": 0}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_single_pattern_can_be_asked_for(tmp_path: Path, pattern: str) -> None:
    cfg = BankConfig(seed=4, cards=300, days=14, fraud_rate=0.02, pattern_weights={pattern: 1.0})
    summary = generate(cfg, tmp_path)
    assert summary.frauds[pattern] == 6
    assert sum(summary.frauds.values()) == 6
    labels = pl.read_csv(tmp_path / "labels.csv")
    assert set(labels["pattern"]) == {pattern}
    assert np.all(labels["event_id"].is_not_null().to_numpy())


def test_patterns_a_bank_cannot_host_are_skipped_not_faked(tmp_path: Path) -> None:
    # One ATM and one day: no burst over three ATMs, no day-long mule inflow.
    cfg = BankConfig(seed=1, cards=10, days=1, atms_internal=1, atms_external=0, fraud_rate=1.0)
    summary = generate(cfg, tmp_path)
    assert summary.frauds["lost_stolen_card"] == 0
    assert summary.frauds["money_mule"] == 0
    assert 0 < sum(summary.frauds.values()) <= 10
    labels = pl.read_csv(tmp_path / "labels.csv")
    assert "lost_stolen_card" not in set(labels["pattern"])
