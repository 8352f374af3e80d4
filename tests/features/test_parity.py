"""Online (profiles, at decision time) and offline (Polars, point in time) features agree."""

from __future__ import annotations

import math
import random

import numpy as np
import polars as pl
import pytest

from tests.features.conftest import LABEL_DELAY, Bank, Replayed
from vigil.features import FEATURES, transaction_features
from vigil.profiles.sketch import ALPHA

QUANTILE = {"to_p95"}


@pytest.fixture(scope="module")
def offline(bank: Bank) -> pl.DataFrame:
    return transaction_features(
        bank.events, labels=bank.labels, label_delay=LABEL_DELAY, reference=bank.reference
    )


def _agree(online: float, offline: float, relative: float) -> bool:
    if math.isnan(online) or math.isnan(offline):
        return math.isnan(online) and math.isnan(offline)
    return abs(online - offline) <= relative * max(1.0, abs(online))


def test_every_completed_transaction_was_captured(offline: pl.DataFrame, replayed: Replayed):
    assert replayed.blocked == 0
    assert set(offline["event_id"]) == set(replayed.online)


def test_random_events_agree_online_and_offline(offline: pl.DataFrame, replayed: Replayed):
    rows = {r["event_id"]: r for r in offline.iter_rows(named=True)}
    drawn = random.Random(5).sample(sorted(rows), 2000)
    mismatches = []
    for event_id in drawn:
        online, row = replayed.online[event_id], rows[event_id]
        for f in FEATURES:
            # the sketch answers within alpha; the offline sketch mirrors it, so allow alpha
            tolerance = 2.5 * ALPHA if f.aggregation in QUANTILE else 1e-9
            if not _agree(online[f.name], row[f.name], tolerance):
                mismatches.append((event_id, f.name, online[f.name], row[f.name]))
    assert mismatches == []


def test_parity_covers_defined_values(offline: pl.DataFrame):
    """Each feature is defined (not NaN) and not constant somewhere, or parity proves little."""
    for f in FEATURES:
        values = offline[f.name].to_numpy()
        defined = values[~np.isnan(values)]
        assert len(defined) > 50, f.name
        assert defined.min() < defined.max(), f.name
