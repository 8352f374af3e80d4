"""Daily snapshots and StandIn training sets on a hand-made history."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from vigil.domain import User
from vigil.features import (
    card_aggregated_features,
    card_model_training_data,
    user_aggregated_features,
    user_model_training_data,
)
from vigil.storage.reference import ReferenceData

D = datetime(2022, 3, 10, tzinfo=UTC)


def _events() -> pl.DataFrame:
    at = [
        D - timedelta(days=30),  # exactly 30 days before D: in the 30-day window [D-30d, D)
        D - timedelta(days=30, microseconds=1),  # just before it: out
        D - timedelta(days=2),
        D - timedelta(microseconds=1),  # the last instant before D
        D,  # D itself belongs to the next snapshot
        D + timedelta(hours=5),
    ]
    return pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(at))],
            "timestamp": at,
            "type": "withdrawal",
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            "card_id": "c-1",
            "user_id": "u-1",
            "standin": [False, False, True, True, False, True],
        }
    ).sort("timestamp")


FEEDBACK = pl.DataFrame(
    {
        "target_event_id": ["e2", "e3", "e5"],
        "label": ["standin_loss", "standin_recovered", "standin_loss"],
        # e3's outcome arrives on D itself: not known to D's snapshot
        "timestamp": [D - timedelta(days=1), D + timedelta(hours=1), D + timedelta(days=2)],
        "event_id": ["f1", "f2", "f3"],
    }
)
DELAY = timedelta(days=3)
REFERENCE = ReferenceData(users={"u-1": User(user_id="u-1", created_at=D - timedelta(days=100))})


def test_snapshot_windows_cover_the_days_before_the_reference_date():
    snap = user_aggregated_features(
        _events(),
        feedback=FEEDBACK,
        label_delay=DELAY,
        reference=REFERENCE,
        dates=[D.date(), date(2022, 3, 13)],
    )
    row = snap.filter(pl.col("agg_reference_date") == D.date()).row(0, named=True)
    assert row["txn_count_30d"] == 3  # e0, e2, e3
    assert row["avg_txn_amount_30d"] == pytest.approx((10 + 30 + 40) / 3)
    assert row["standin_success_rate_90d"] == 0.0  # only e2's loss is known by D
    assert row["dispute_rate_90d"] == 0.0
    assert row["account_age_days"] == 100.0
    later = snap.filter(pl.col("agg_reference_date") == date(2022, 3, 13)).row(0, named=True)
    assert later["standin_success_rate_90d"] == pytest.approx(1 / 3)  # e2 lost, e3 back, e5 lost


def test_fraud_labels_count_as_disputes_once_known():
    labels = pl.DataFrame({"event_id": ["e3"]})
    kwargs = {"feedback": FEEDBACK, "labels": labels, "label_delay": DELAY}
    days = [D.date() + timedelta(days=k) for k in (2, 3)]
    snap = user_aggregated_features(_events(), dates=days, **kwargs)
    rates = snap["dispute_rate_90d"].to_list()
    # e3 (D - 1 µs) is known at D + 3 d - 1 µs: counted by D + 3 d, not by D + 2 d
    assert rates == [0.0, pytest.approx(1 / 6)]


def test_card_snapshots_start_the_day_after_the_first_event():
    snap = card_aggregated_features(_events(), feedback=FEEDBACK, label_delay=DELAY)
    first = snap.row(0, named=True)
    assert first["agg_reference_date"] == (D - timedelta(days=30)).date()
    assert first["card_txn_count_30d"] == 1  # e1 at 23:59:59.999999 the day before
    assert snap["agg_reference_date"].is_sorted() and snap.height == 32
    assert first["card_age_days"] == pytest.approx(1e-6 / 86400, abs=1e-12)


def test_training_rows_are_settled_standins_with_that_days_snapshot():
    train = card_model_training_data(_events(), feedback=FEEDBACK, label_delay=DELAY)
    assert train["event_id"].to_list() == ["e2", "e3", "e5"]
    assert train["label"].to_list() == [1, 0, 1]
    e3 = train.row(1, named=True)
    assert e3["agg_reference_date"] == (D - timedelta(days=1)).date()
    # the snapshot of e3's day (e0, e1, e2 before it): e2's loss is known only at its midnight
    assert e3["card_txn_count_30d"] == 3 and math.isnan(e3["card_standin_success_90d"])
    users = user_model_training_data(
        _events(), feedback=FEEDBACK, label_delay=DELAY, reference=REFERENCE
    )
    assert users["label"].to_list() == [1, 0, 1]
    assert users.row(2, named=True)["standin_success_rate_90d"] == 0.0  # e2 lost, e3 unknown
