"""History building helpers: stable entity order beyond 16-bit codes, NumPy's page setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from vigil.features import transaction_features
from vigil.features.history import _SET_HUGEPAGE, ordinary_pages, stable_order


@pytest.mark.parametrize("high", [3, 2**16, 70_000, 2**32 - 1, 2**40])
def test_stable_order_is_a_stable_argsort(high):
    keys = np.random.default_rng(high).integers(0, high, 20_000)
    assert np.array_equal(stable_order(keys), np.argsort(keys, kind="stable"))


def test_stable_order_of_negative_and_no_keys():
    keys = np.array([3, -2, 3, -2, 0])
    assert stable_order(keys).tolist() == [1, 3, 4, 0, 2]
    assert stable_order(np.zeros(0, np.int64)).tolist() == []


def test_more_cards_than_sixteen_bits_hold():
    # 70,000 cards: their codes no longer fit the 16-bit radix sort
    n = 70_000
    t0 = datetime(2022, 1, 1, tzinfo=UTC)
    events = pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n + 1)],
            "type": ["withdrawal"] * (n + 1),
            "amount": [10.0] * n + [30.0],
            "card_id": [f"c{i}" for i in range(n)] + ["c0"],
            "timestamp": [t0 + timedelta(seconds=i) for i in range(n + 1)],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )
    out = transaction_features(events, label_delay=timedelta(days=7))
    last = out.row(n, named=True)
    assert last["card_txn_count_1d"] == 1.0 and last["card_avg_amount_1d"] == 10.0
    assert out["card_txn_count_1d"][:n].sum() == 0.0


@pytest.mark.skipif(_SET_HUGEPAGE is None, reason="NumPy without the huge-page switch")
def test_ordinary_pages_puts_the_setting_back():
    before = _SET_HUGEPAGE(True)
    try:
        with ordinary_pages():
            assert _SET_HUGEPAGE(False) is False  # off inside
        assert _SET_HUGEPAGE(True) is True  # back on after
    finally:
        _SET_HUGEPAGE(before)
