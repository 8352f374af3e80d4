"""Nothing from after an event reaches its features: later labels, later events, later feedback."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.features.conftest import LABEL_DELAY, Bank, Replayed, replay_with_feedback
from vigil.features import (
    card_aggregated_features,
    transaction_features,
    user_model_training_data,
)


@pytest.fixture(scope="module")
def cut(bank: Bank):
    """The median transaction time: what is known at it must not depend on what follows."""
    times = bank.events.filter(pl.col("kind") == "transaction")["timestamp"]
    return times.sort()[len(times) // 2]


def _features(bank: Bank, events: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    return transaction_features(
        events, labels=labels, label_delay=LABEL_DELAY, reference=bank.reference
    ).drop("label")


def _until(frame: pl.DataFrame, cut) -> pl.DataFrame:
    return frame.filter(pl.col("timestamp") <= cut).sort("event_id")


def test_labels_learnt_after_an_event_never_change_its_features(bank: Bank, cut):
    before = _features(bank, bank.events, bank.labels)
    # Label as fraud every transaction whose label would only be known after the cut.
    late = bank.events.filter(
        (pl.col("kind") == "transaction") & (pl.col("timestamp") + LABEL_DELAY > cut)
    ).select("event_id", "transaction_id")
    after = _features(bank, bank.events, pl.concat([bank.labels.select(late.columns), late]))
    assert_frame_equal(_until(before, cut), _until(after, cut))
    # ...while the events after the cut do see them: the test can tell a leak.
    changed = before.join(after, on="event_id").filter(
        pl.col("terminal_fraud_rate_30d") != pl.col("terminal_fraud_rate_30d_right")
    )
    assert changed.height > 100
    assert changed["timestamp"].min() > cut


def test_a_label_the_engine_learns_later_never_changes_an_earlier_events_features(
    bank: Bank, cut, feedback: pl.DataFrame, replayed: Replayed
):
    """Online: the same stream with every label that arrives after the cut held back (never
    sent) gives the events up to the cut exactly the features they had; later events differ."""
    held_back = replay_with_feedback(bank, feedback.filter(pl.col("known_at") <= cut))
    assert held_back.learnt < replayed.learnt
    times = dict(bank.events.select("event_id", "timestamp").iter_rows())
    risk = ("terminal_fraud_rate_1d", "terminal_fraud_rate_7d", "terminal_fraud_rate_30d")

    def values(seen: dict[str, dict[str, float]], event_id: str) -> tuple[str, ...]:
        return tuple(repr(seen[event_id][name]) for name in risk)  # NaN == NaN, as text

    early = [e for e in replayed.online if times[e] <= cut]
    assert len(early) > 1000
    assert [values(replayed.online, e) for e in early] == [
        values(held_back.online, e) for e in early
    ]
    late = [e for e in replayed.online if times[e] > cut]
    changed = [e for e in late if values(replayed.online, e) != values(held_back.online, e)]
    assert len(changed) > 100


def test_changing_or_dropping_later_events_never_changes_earlier_features(bank: Bank, cut):
    before = _features(bank, bank.events, bank.labels)
    later = pl.col("timestamp") > cut
    tripled = pl.when(later).then(pl.col("amount") * 3).otherwise("amount")
    rewritten = (
        bank.events.with_columns(amount=tripled)
        .with_row_index("i")
        .filter(~later | (pl.col("i") % 2 == 0))
        .drop("i")
    )
    after = _features(bank, rewritten, bank.labels)
    assert_frame_equal(_until(before, cut), _until(after, cut))
    moved = before.join(after, on="event_id").filter(
        pl.col("card_avg_amount_30d") != pl.col("card_avg_amount_30d_right")
    )
    assert moved.height > 100 and moved["timestamp"].min() > cut


def test_late_feedback_never_changes_earlier_snapshots_or_training_rows(bank: Bank, cut):
    day = cut.date()
    kwargs = {"labels": bank.labels, "label_delay": LABEL_DELAY, "reference": bank.reference}
    known = bank.feedback.with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC"))
    early = known.filter(pl.col("timestamp").dt.date() < day)
    # every later outcome flipped: recovered <-> lost
    flipped = known.with_columns(
        label=pl.when(pl.col("timestamp").dt.date() >= day)
        .then(
            pl.col("label").replace(
                {"standin_loss": "standin_recovered", "standin_recovered": "standin_loss"}
            )
        )
        .otherwise("label")
    )
    a = card_aggregated_features(bank.events, feedback=early, **kwargs)
    b = card_aggregated_features(bank.events, feedback=flipped, **kwargs)
    up_to = pl.col("agg_reference_date") <= day
    assert_frame_equal(a.filter(up_to), b.filter(up_to))
    assert not a.filter(~up_to).equals(b.filter(~up_to))
    # Training rows: the snapshot features never depend on the outcome being learnt.
    ta = user_model_training_data(bank.events, feedback=known, **kwargs)
    tb = user_model_training_data(bank.events, feedback=flipped, **kwargs)
    same_day = pl.col("agg_reference_date") <= day
    columns = ["event_id", "txn_count_30d", "avg_txn_amount_30d", "standin_success_rate_90d"]
    assert_frame_equal(ta.filter(same_day).select(columns), tb.filter(same_day).select(columns))
    assert (ta["label"] != tb["label"]).sum() > 0


def test_zero_label_delay_is_refused(bank: Bank):
    with pytest.raises(ValueError, match="label_delay"):
        transaction_features(bank.events, labels=bank.labels, label_delay=timedelta(0))
