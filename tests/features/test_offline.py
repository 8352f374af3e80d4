"""Offline features on hand-made histories: window edges, ties, pairing, statistics, errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from vigil.features import transaction_features
from vigil.profiles.sketch import ALPHA

T0 = datetime(2022, 3, 1, 8, tzinfo=UTC)
WEEK = timedelta(days=7)


def _tx(event_id: str, at: timedelta, amount: float, **extra) -> dict:
    row = {
        "kind": "transaction",
        "event_id": event_id,
        "transaction_id": extra.pop("transaction_id", event_id),
        "timestamp": T0 + at,
        "type": "withdrawal",
        "phase": "single",
        "amount": amount,
        "card_id": "c-1",
        "user_id": "u-1",
        "started_at": None,
    }
    row.update(extra)
    return row


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema_overrides={
            "timestamp": pl.Datetime("us", "UTC"),
            "started_at": pl.Datetime("us", "UTC"),
        },
    )


def _row(out: pl.DataFrame, event_id: str) -> dict:
    return out.filter(pl.col("event_id") == event_id).row(0, named=True)


def test_window_holds_events_after_its_edge_and_up_to_now():
    day = timedelta(days=1)
    out = transaction_features(
        _frame(
            [
                _tx("a", timedelta(0), 10.0),
                _tx("b", day - timedelta(microseconds=1), 20.0),
                _tx("c", day, 40.0),
            ]
        ),
        label_delay=WEEK,
    )
    # at c (t = a + 1 d): a sits exactly on the edge t - W, so it is out; b is in
    c = _row(out, "c")
    assert (c["card_txn_count_1d"], c["card_avg_amount_1d"], c["card_txn_count_7d"]) == (
        1.0,
        20.0,
        2.0,
    )
    assert math.isnan(_row(out, "a")["card_avg_amount_1d"])  # nothing before the first


def test_events_at_the_same_time_see_only_those_decided_before_them():
    rows = [_tx(name, timedelta(hours=1), 10.0) for name in ("x", "y", "z")]
    out = transaction_features(_frame(rows), label_delay=WEEK)
    assert out["card_txn_count_1h"].to_list() == [0.0, 1.0, 2.0]
    assert out["event_id"].to_list() == ["x", "y", "z"]  # file order kept for ties


def test_repeated_event_ids_count_once_and_unsorted_files_are_replayed_in_time_order():
    rows = [
        _tx("b", timedelta(hours=2), 20.0),
        _tx("a", timedelta(hours=1), 10.0),
        _tx("a", timedelta(hours=1), 10.0),
    ]
    out = transaction_features(_frame(rows), label_delay=WEEK)
    assert out["event_id"].to_list() == ["a", "b"]
    assert _row(out, "b")["card_txn_count_1d"] == 1.0


def test_an_end_event_takes_its_start_time_from_the_start_event():
    rows = [
        _tx("p", timedelta(0), 10.0),
        _tx("t-s", timedelta(hours=1), None, transaction_id="t", phase="start"),
        _tx("t-e", timedelta(hours=1, minutes=5), 50.0, transaction_id="t", phase="end"),
    ]
    out = transaction_features(_frame(rows), label_delay=WEEK)
    assert out["event_id"].to_list() == ["p", "t-e"]  # a start event is no row of its own
    assert _row(out, "t-e")["card_seconds_since_last"] == 3600.0  # start, not end, minus p


def test_amount_statistics_follow_the_entitys_earlier_amounts_of_the_same_type():
    rng = np.random.default_rng(3)
    amounts = np.round(rng.lognormal(9, 0.6, 300), 2)
    rows = [_tx(f"w{i}", timedelta(hours=i), float(a)) for i, a in enumerate(amounts)]
    rows.insert(150, _tx("dep", timedelta(hours=150, minutes=30), 5.0, type="deposit"))
    out = transaction_features(_frame(rows), label_delay=WEEK)
    last = _row(out, "w299")
    earlier = amounts[:299]
    z = (amounts[299] - earlier.mean()) / earlier.std(ddof=1)
    assert last["card_amount_zscore"] == pytest.approx(z, rel=1e-9)
    assert last["card_amount_to_mean"] == pytest.approx(amounts[299] / earlier.mean(), rel=1e-9)
    # the sketch's p95 lies within alpha of the true (lower) 95th percentile
    true_p95 = np.sort(earlier)[math.floor(0.95 * 298)]
    assert abs(amounts[299] / last["card_amount_to_p95"] / true_p95 - 1) <= ALPHA
    assert math.isnan(_row(out, "dep")["card_amount_zscore"])  # no earlier deposit


def test_terminal_risk_counts_labels_only_once_known():
    day = timedelta(days=1)
    # At 06:00, on the edges of the 7 d window's 6-hour tiles: each read's window then ends
    # exactly one delay back (vigil.profiles.fraud)
    rows = [
        _tx(f"e{i}", i * day - timedelta(hours=2), 10.0, terminal_id="ATM-1") for i in range(12)
    ]
    labels = pl.DataFrame({"event_id": ["e1", "e5"]})
    out = transaction_features(_frame(rows), labels=labels, label_delay=3 * day)
    rate = dict(zip(out["event_id"], out["terminal_fraud_rate_7d"], strict=True))
    # at e8 the window is (e-2, e5]: six transactions; e1 known (at day 4) and e5 known at day 8
    assert rate["e8"] == pytest.approx(2 / 6)
    assert rate["e7"] == pytest.approx(1 / 5)  # window (e-3, e4]: e5 not in it yet
    assert math.isnan(rate["e2"])  # (e-8, e-1]: nothing in it
    assert out["label"].to_list() == [int(i in (1, 5)) for i in range(12)]


def test_terminal_risk_windows_end_on_their_tiles_edge():
    """Read at ``t``, the window ends at ``floor((t - d) / h) * h``: a transaction less than
    one tile older than the delay is not counted yet (the delay is at most a tile longer)."""
    day, hour = timedelta(days=1), timedelta(hours=1)
    # e0 at 08:00 on day 0; e1 three days later at 08:30, e2 at 09:00 and e3 at 14:00
    at = [timedelta(0), 3 * day + hour / 2, 3 * day + hour, 3 * day + 6 * hour]
    rows = [_tx(f"e{i}", t, 10.0, terminal_id="ATM-1") for i, t in enumerate(at)]
    labels = pl.DataFrame({"event_id": ["e0"]})
    out = transaction_features(_frame(rows), labels=labels, label_delay=3 * day)
    one_day = dict(zip(out["event_id"], out["terminal_fraud_rate_1d"], strict=True))
    week = dict(zip(out["event_id"], out["terminal_fraud_rate_7d"], strict=True))
    # 1 d in hour tiles: at 08:30 the window ends at 08:00, e0's time: in it
    assert one_day["e1"] == one_day["e2"] == one_day["e3"] == 1.0
    # 7 d in 6-hour tiles: it ends at 06:00 until 12:00 (e0 not in it yet), then at 12:00
    assert math.isnan(week["e1"]) and math.isnan(week["e2"])
    assert week["e3"] == 1.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda f: f.drop("timestamp"), "timestamp"),
        (lambda f: f.with_columns(type=pl.lit("teleport")), "type"),
        (lambda f: f.with_columns(amount=pl.lit(None, pl.Float64)), "amount"),
        (lambda f: f.with_columns(timestamp=pl.lit("not a time")), "timestamp"),
    ],
)
def test_bad_input_names_the_field(change, field):
    frame = change(_frame([_tx("a", timedelta(0), 10.0)]))
    with pytest.raises(ValueError, match=f"^{field}"):
        transaction_features(frame, label_delay=WEEK)
