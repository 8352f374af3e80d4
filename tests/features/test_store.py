"""The daily snapshot tables round-trip through the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from tests.features.conftest import LABEL_DELAY, Bank
from vigil.features import card_aggregated_features, user_aggregated_features
from vigil.features.snapshots import snapshot_rows
from vigil.storage import Store


def test_snapshots_round_trip_with_null_for_undefined(store: Store, bank: Bank):
    kwargs = {"feedback": bank.feedback, "label_delay": LABEL_DELAY, "reference": bank.reference}
    for kind, build in (("user", user_aggregated_features), ("card", card_aggregated_features)):
        day = bank.events["timestamp"].min().date() + timedelta(days=20)
        frame = build(bank.events, dates=[day], **kwargs)
        rows = snapshot_rows(frame)
        assert store.save_aggregated_features(kind, rows) == frame.height > 50
        # an upsert of the same day replaces, never duplicates
        assert store.save_aggregated_features(kind, rows) == frame.height
        back = pl.DataFrame(store.aggregated_features(kind, day), schema=frame.schema)
        expected = frame.with_columns(pl.col(pl.Float64).fill_nan(None)).sort(f"{kind}_id")
        assert back.equals(expected)
        assert back.null_count().sum_horizontal().item() > 0  # NaN stored as NULL
        assert store.aggregated_features(kind, day + timedelta(days=1)) == []
