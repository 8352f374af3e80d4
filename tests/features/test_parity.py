"""Online (profiles, at decision time) and offline (Polars, point in time) features agree.

The replayed stream carries the fraud feedback too, so terminal risk is compared as the engine
learns it (labels counted from their arrival) against the offline builder given the same
labels with their ``known_at``.
"""

from __future__ import annotations

import math
import random

import numpy as np
import polars as pl
import pytest

from tests.features.conftest import LABEL_DELAY, Bank, Replayed
from vigil.domain import Action
from vigil.features import FEATURES, transaction_features
from vigil.profiles.sketch import ALPHA

QUANTILE = {"to_p95"}


@pytest.fixture(scope="module")
def offline(bank: Bank, feedback: pl.DataFrame) -> pl.DataFrame:
    return transaction_features(
        bank.events, labels=feedback, label_delay=LABEL_DELAY, reference=bank.reference
    )


def _agree(online: float, offline: float, relative: float) -> bool:
    if math.isnan(online) or math.isnan(offline):
        return math.isnan(online) and math.isnan(offline)
    return abs(online - offline) <= relative * max(1.0, abs(online))


def test_every_completed_transaction_was_captured(offline: pl.DataFrame, replayed: Replayed):
    assert set(offline["event_id"]) == set(replayed.online)


def test_the_engine_learnt_every_label_on_a_terminal_transaction(
    bank: Bank, feedback: pl.DataFrame, replayed: Replayed
):
    at_terminal = feedback.join(
        bank.events.select("event_id", "terminal_id"), on="event_id"
    ).filter(pl.col("terminal_id").is_not_null())
    assert replayed.learnt == at_terminal.height > 50


def test_late_labels_shape_terminal_risk(bank: Bank, feedback: pl.DataFrame, offline):
    """Labels arriving after the delay count later than the delay alone says: the parity
    below then checks that the engine applies the arrival rule as the builder does."""
    as_if_on_time = transaction_features(
        bank.events,
        labels=feedback.drop("known_at"),
        label_delay=LABEL_DELAY,
        reference=bank.reference,
    )
    differ = (
        offline["terminal_fraud_rate_30d"].fill_nan(-1)
        != as_if_on_time["terminal_fraud_rate_30d"].fill_nan(-1)
    ).sum()
    assert differ > 50


def _mismatches(
    event_ids: list[str], offline: pl.DataFrame, replayed: Replayed
) -> list[tuple[str, str, float, float]]:
    rows = {r["event_id"]: r for r in offline.iter_rows(named=True)}
    mismatches = []
    for event_id in event_ids:
        online, row = replayed.online[event_id], rows[event_id]
        for f in FEATURES:
            # the sketch answers within alpha; the offline sketch mirrors it, so allow alpha
            tolerance = 2.5 * ALPHA if f.aggregation in QUANTILE else 1e-9
            if not _agree(online[f.name], row[f.name], tolerance):
                mismatches.append((event_id, f.name, online[f.name], row[f.name]))
    return mismatches


def test_random_events_agree_online_and_offline(offline: pl.DataFrame, replayed: Replayed):
    rows = {r["event_id"]: r for r in offline.iter_rows(named=True)}
    drawn = random.Random(5).sample(sorted(rows), 2000)
    # and every transaction at a terminal with a fraud rate defined: terminal risk in full
    drawn += [i for i, r in rows.items() if not math.isnan(r["terminal_fraud_rate_30d"])]
    assert _mismatches(drawn, offline, replayed) == []


@pytest.mark.parametrize("action", list(Action))
def test_features_agree_after_each_action(
    action: Action, offline: pl.DataFrame, replayed: Replayed
):
    """The card's next transaction reads the same features online as offline whether its
    previous one was allowed, stepped up, reviewed or blocked (offline knows no actions)."""
    following = replayed.after.get(action, [])
    assert len(following) > 200
    assert _mismatches(following, offline, replayed) == []


def test_parity_covers_defined_values(offline: pl.DataFrame):
    """Each feature is defined (not NaN) and not constant somewhere, or parity proves little."""
    for f in FEATURES:
        values = offline[f.name].to_numpy()
        defined = values[~np.isnan(values)]
        assert len(defined) > 50, f.name
        assert defined.min() < defined.max(), f.name
