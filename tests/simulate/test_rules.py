"""The legitimate data obeys its own rules: timing, travel, amounts, logins, StandIn."""

from __future__ import annotations

from importlib import resources

import numpy as np
import polars as pl

from vigil.geo import haversine_km
from vigil.simulate.transactions import enforce_gaps, over_extract_limit

from .conftest import CONFIG, Generated


def _card_sequences(generated: Generated, *, exclude: list[str]) -> pl.DataFrame:
    """Consecutive ATM operations of each card, with the previous one's end and place."""
    skip = generated.labels.filter(pl.col("pattern").is_in(exclude))["transaction_id"]
    return (
        generated.atm_transactions()
        .filter(~pl.col("transaction_id").is_in(skip.implode()))
        .sort("card_id", "start")
        .with_columns(
            pl.col("end").shift().over("card_id").alias("prev_end"),
            pl.col("loc_latitude").shift().over("card_id").alias("prev_lat"),
            pl.col("loc_longitude").shift().over("card_id").alias("prev_lon"),
        )
        .drop_nulls("prev_end")
    )


def test_operations_never_overlap_and_respect_50_kmh(generated: Generated) -> None:
    # Everything but the clones — injected episodes included — is physically possible.
    seq = _card_sequences(generated, exclude=["card_cloning"])
    assert seq.height > 20_000
    gap = (seq["start"] - seq["prev_end"]).dt.total_seconds().to_numpy()
    km = haversine_km(
        seq["prev_lat"].to_numpy(), seq["prev_lon"].to_numpy(),
        seq["loc_latitude"].to_numpy(), seq["loc_longitude"].to_numpy(),
    )  # fmt: skip
    assert (gap > 0).all()
    assert (gap >= km / CONFIG.legit_speed_kmh * 3600).all()
    # The rule binds: many consecutive operations are at different ATMs.
    assert (km > 1).mean() > 0.2


def test_atms_lie_inside_their_citys_box(generated: Generated) -> None:
    bounds = pl.read_csv(resources.files("vigil.simulate") / "data" / "city_bounds.csv")
    wisabi_cities = set(
        pl.read_csv(resources.files("vigil.simulate") / "data" / "atm_locations.csv")["City"]
    )
    atms = generated.atms.join(bounds, on="city", how="left")
    assert atms["lat_min"].null_count() == 0, "every ATM is in a city with a box"
    assert set(atms["city"]) <= wisabi_cities
    inside = atms["loc_latitude"].is_between(atms["lat_min"], atms["lat_max"]) & atms[
        "loc_longitude"
    ].is_between(atms["lon_min"], atms["lon_max"])
    assert inside.all()
    assert atms.height == CONFIG.atms_internal + CONFIG.atms_external
    assert atms["city"].n_unique() > 1


def test_atms_are_near_home(generated: Generated) -> None:
    fraud = generated.labels["transaction_id"]
    tx = generated.atm_transactions().filter(~pl.col("transaction_id").is_in(fraud.implode()))
    homes = generated.cards.select(
        pl.col("number_id").alias("card_id"), pl.col("loc_latitude").alias("home_lat"),
        pl.col("loc_longitude").alias("home_lon"),
    )  # fmt: skip
    tx = tx.join(homes, on="card_id")
    km = haversine_km(
        tx["home_lat"].to_numpy(), tx["home_lon"].to_numpy(),
        tx["loc_latitude"].to_numpy(), tx["loc_longitude"].to_numpy(),
    )  # fmt: skip
    # Within ~70 km, except for the rare home with no ATM that close (then its nearest one).
    assert np.quantile(km, 0.99) <= CONFIG.near_km
    assert km.max() < 150


def test_amounts(generated: Generated) -> None:
    tx = generated.events.filter((pl.col("kind") == "transaction") & (pl.col("phase") != "start"))
    assert (tx["amount"] >= 0).all()
    inquiries = tx.filter(pl.col("type") == "balance_inquiry")
    assert inquiries.height > 1000 and (inquiries["amount"] == 0).all()
    money = tx.filter(pl.col("type") != "balance_inquiry")
    assert (money["amount"] > 0).mean() > 0.999
    assert ((money["amount"] * 100).round(6) % 1 == 0).all()  # whole cents
    assert (tx.filter(pl.col("type") == "deposit")["direction"] == "credit").all()
    assert (tx.filter(pl.col("type") == "withdrawal")["direction"] == "debit").all()
    assert inquiries["direction"].null_count() == inquiries.height
    assert (tx["currency"] == "NGN").all()


def test_amounts_follow_the_card_behaviour(generated: Generated) -> None:
    fraud = generated.labels["transaction_id"]
    w = (
        generated.atm_transactions()
        .filter((pl.col("type") == "withdrawal") & ~pl.col("transaction_id").is_in(fraud.implode()))
        .join(generated.cards.rename({"number_id": "card_id"}), on="card_id")
    )
    ratio = (w["amount"] / w["amount_avg_withdrawal"]).to_numpy()
    # Normal(mean, std≈mean) with negatives redrawn from U(0, 2 mean): E = mean × (Φ(1) +
    # φ(1) + P(X<0)) ≈ 1.24 mean for std = mean, a little less once the limit declines some.
    assert 1.1 < ratio.mean() < 1.35
    assert 0.4 < np.median(ratio) < 1.3
    assert (ratio <= 5.0 + 1e-9).all()


def test_legitimate_withdrawals_stay_within_the_limit_over_any_24_hours(
    generated: Generated,
) -> None:
    fraud = generated.labels["transaction_id"]
    w = (
        generated.atm_transactions()
        .filter((pl.col("type") == "withdrawal") & ~pl.col("transaction_id").is_in(fraud.implode()))
        .join(generated.cards.select(pl.col("number_id").alias("card_id"), "extract_limit"),
              on="card_id")
        .sort("card_id", "start")
    )  # fmt: skip
    rolling = w.rolling("start", period="1d", group_by="card_id").agg(
        pl.col("amount").sum().alias("sum24h"), pl.col("extract_limit").first()
    )
    assert (rolling["sum24h"] <= rolling["extract_limit"]).all()


def test_transfers_carry_counterparties_with_a_few_usual_destinations(generated: Generated) -> None:
    fraud = generated.labels["transaction_id"]
    out = generated.events.filter(
        (pl.col("type") == "transfer") & (pl.col("phase") != "start")
        & (pl.col("direction") == "debit") & ~pl.col("transaction_id").is_in(fraud.implode())
    )  # fmt: skip
    assert out["counterparty_account"].null_count() == 0
    assert out["counterparty_country"].null_count() == 0
    per_account = out.group_by("account_id").agg(pl.col("counterparty_account").n_unique())
    assert per_account["counterparty_account"].max() <= 3
    share_ng = (out["counterparty_country"] == "NG").mean()
    assert 0.75 < share_ng < 0.97
    credits = generated.events.filter(
        (pl.col("type") == "transfer") & (pl.col("direction") == "credit")
    )
    assert credits.height > 100


def test_logins_come_from_usual_devices_hours_and_places(generated: Generated) -> None:
    ato = generated.labels.filter(pl.col("pattern") == "account_takeover")["event_id"]
    logins = generated.events.filter(
        (pl.col("kind") == "login") & ~pl.col("event_id").is_in(ato.implode())
    )
    per_week = logins.height / CONFIG.cards / (CONFIG.days / 7)
    assert 2.0 < per_week < 6.0
    per_user = logins.group_by("user_id").agg(
        pl.col("device_id").n_unique().alias("devices"),
        pl.col("country").filter(pl.col("country") != "NG").n_unique().alias("abroad"),
    )
    assert per_user["devices"].max() <= 2
    assert per_user["abroad"].max() <= 1
    travellers = (per_user["abroad"] > 0).mean()
    assert 0.01 < travellers < 0.1
    assert 0.01 < (~logins["success"]).mean() < 0.06
    assert (logins.filter(~pl.col("success"))["session_seconds"] == 0).all()
    assert logins.filter(pl.col("success"))["session_seconds"].min() > 0
    assert logins["ip"].null_count() == 0 and logins["device_id"].null_count() == 0
    # Usual hours: a user's logins cluster around their own hour (local time).
    hour = logins.with_columns(((pl.col("timestamp").dt.hour() + 1) % 24).alias("h"))
    spread = hour.group_by("user_id").agg(pl.col("h").std()).drop_nulls()
    assert spread["h"].median() < 3.0


def test_travel_logins_use_the_users_own_devices(generated: Generated) -> None:
    ato = generated.labels["event_id"]
    logins = generated.events.filter(
        (pl.col("kind") == "login") & ~pl.col("event_id").is_in(ato.implode())
    )
    home = logins.filter(pl.col("country") == "NG").group_by("user_id").agg(pl.col("device_id"))
    known = {r["user_id"]: set(r["device_id"]) for r in home.iter_rows(named=True)}
    abroad = logins.filter(pl.col("country") != "NG")
    assert abroad.height > 10
    seen = [r["device_id"] in known.get(r["user_id"], set()) for r in abroad.iter_rows(named=True)]
    # A traveller may take the one of their two devices they rarely use at home, not a new one.
    assert np.mean(seen) > 0.7


def test_no_atm_use_at_home_while_abroad(generated: Generated) -> None:
    ato = generated.labels["event_id"]
    abroad = generated.events.filter(
        (pl.col("kind") == "login")
        & (pl.col("country") != "NG")
        & ~pl.col("event_id").is_in(ato.implode())
    ).select("user_id", pl.col("timestamp").alias("abroad_at"))
    fraud = generated.labels["transaction_id"]
    atm = (
        generated.atm_transactions()
        .filter(~pl.col("transaction_id").is_in(fraud.implode()))
        .select("user_id", "start", "end")
    )
    close = abroad.join(atm, on="user_id").filter(
        (pl.col("end") > pl.col("abroad_at") - pl.duration(hours=12))
        & (pl.col("start") < pl.col("abroad_at") + pl.duration(hours=12))
    )
    assert abroad.height > 10
    assert close.height == 0


def test_standin_outcomes_are_learnable(generated: Generated) -> None:
    events, feedback = generated.events, generated.feedback
    standin = events.filter(pl.col("standin") & (pl.col("phase") == "end"))
    assert (
        0.05
        < standin.height
        / events.filter((pl.col("type") == "withdrawal") & (pl.col("phase") == "end")).height
        < 0.15
    )
    assert feedback.height == standin.height
    assert set(feedback["target_event_id"]) == set(standin["event_id"])
    assert set(feedback["label"]) == {"standin_loss", "standin_recovered"}
    assert feedback["event_id"].n_unique() == feedback.height
    joined = feedback.join(
        standin.select(pl.col("event_id").alias("target_event_id"), "timestamp", "card_id"),
        on="target_event_id",
    ).join(generated.cards.rename({"number_id": "card_id"}), on="card_id")
    settled = joined["timestamp"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
    assert (settled > joined["timestamp_right"]).all()
    erratic = (
        (joined["amount_std_withdrawal"] / joined["amount_avg_withdrawal"] - 1.063) / 0.077
        + (joined["withdrawal_day"] - 0.37) / 0.169
    ).to_numpy()
    loss = (joined["label"] == "standin_loss").to_numpy()
    high, low = erratic > np.quantile(erratic, 0.75), erratic < np.quantile(erratic, 0.25)
    assert 0.03 < loss.mean() < 0.35
    assert loss[high].mean() > 3 * loss[low].mean()


def test_gap_enforcement_on_a_hand_made_case() -> None:
    card = np.array([0, 0, 0, 1, 1])
    raw = np.array([0, 100, 10_000, 50, 60])
    duration = np.array([300, 300, 300, 30, 30])
    atm = np.array([0, 1, 1, 1, 0])
    km = np.array([[0.0, 50.0], [50.0, 0.0]])  # one hour apart at 50 km/h
    start = enforce_gaps(card, raw, duration, atm, km, 50.0)
    # Second op: 300 s session + 3600 s drive + 1 s; third is already late enough on its own.
    assert start.tolist() == [0, 3901, 10_000, 50, 50 + 30 + 3600 + 1]


def test_extract_limit_decline_uses_a_rolling_day() -> None:
    card = np.array([0, 0, 0, 0])
    kind = np.array([0, 0, 0, 0], dtype=np.int8)
    start = np.array([0, 3600, 80_000, 90_000])
    amount = np.array([40.0, 40.0, 30.0, 10.0])
    limit = np.array([100.0])
    # 40+40+30 = 110 > 100 within a day; at 90_000 the first (t=0) has left the window.
    assert over_extract_limit(card, kind, start, amount, limit).tolist() == [
        False, False, True, False,
    ]  # fmt: skip
