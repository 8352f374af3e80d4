"""Training: the time split, class weighting, early stopping, calibration and metrics."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from vigil.models.metrics import card_precision_at_k
from vigil.models.split import time_split
from vigil.models.train import TrainOptions, train
from vigil.models.trees import CompiledTrees

FEATURES = ["x", "z", "noise"]


def test_split_is_in_time_order_with_the_gap_left_out(table: pl.DataFrame) -> None:
    gap = timedelta(days=1)
    s = time_split(table, gap=gap)
    assert s.train.get_column("timestamp").max() < s.validation_from
    assert s.validation.get_column("timestamp").min() >= s.validation_from + gap
    assert s.validation.get_column("timestamp").max() < s.test_from
    assert s.test.get_column("timestamp").min() >= s.test_from + gap
    # 20 days, 8000 rows: each one-day gap holds about 400 rows
    assert 600 < s.dropped < 1000
    assert s.train.height + s.validation.height + s.test.height + s.dropped == table.height
    ids = [set(p.get_column("event_id")) for p in (s.train, s.validation, s.test)]
    assert not (ids[0] & ids[1]) and not (ids[1] & ids[2]) and not (ids[0] & ids[2])


def test_lightgbm_learns_the_signal_and_stops_early(table: pl.DataFrame) -> None:
    result = train(table, FEATURES, TrainOptions(num_boost_round=400, early_stopping_rounds=20))
    test = result.metrics["test"]
    assert test["roc_auc"] > 0.85
    assert test["average_precision"] > 3 * test["positives"] / test["rows"]  # well above chance
    # card precision@10, recomputed by hand from the test scores: per day each card's best
    # score, the 10 best cards not caught on an earlier day, the share really compromised
    scores = result.test_scores
    by_day: dict = {}
    for t, card, label, score in scores.select("timestamp", "card_id", "label", "score").rows():
        best, bad = by_day.setdefault(t.date(), {}).get(card, (-1.0, False))
        by_day[t.date()][card] = (max(best, score), bad or label == 1)
    caught: set[str] = set()
    precisions, chance = [], []
    for day in sorted(by_day):
        cards = {c: v for c, v in by_day[day].items() if c not in caught}
        top = sorted(cards, key=lambda c: (-cards[c][0], c))[:10]
        hits = [c for c in top if cards[c][1]]
        caught.update(hits)
        precisions.append(len(hits) / 10)
        chance.append(sum(bad for _, bad in cards.values()) / len(cards))
    assert test["card_precision_at_10"] == pytest.approx(np.mean(precisions), abs=1e-12)
    assert test["card_precision_at_10"] > 2 * np.mean(chance)  # far better than picking at random
    params = result.extra["lightgbm_params"]
    train_part = result.metrics["train"]
    negatives = train_part["rows"] - train_part["positives"]
    assert params["scale_pos_weight"] == pytest.approx((negatives / train_part["positives"]) ** 0.5)
    assert result.extra["best_iteration"] < 400
    assert isinstance(result.model.scorer, CompiledTrees)
    # The noise feature is the least important.
    assert min(result.importance, key=result.importance.get) == "noise"


def test_calibration_makes_probabilities_match_the_fraud_rate(table: pl.DataFrame) -> None:
    result = train(table, FEATURES, TrainOptions(kind="logreg"))
    scores = result.test_scores
    # Class weighting inflates raw scores tenfold; after calibration the mean probability is
    # close to the real fraud rate.
    rate = scores.get_column("label").mean()
    assert abs(scores.get_column("score").mean() - rate) < 0.5 * rate
    assert result.metrics["test"]["roc_auc"] > 0.85


def test_logistic_regression_is_the_baseline(table: pl.DataFrame) -> None:
    result = train(table, FEATURES, TrainOptions(kind="logreg"))
    coef = dict(zip(FEATURES, result.model.scorer.coef, strict=True))
    assert coef["x"] > 0.5 and coef["z"] > 0.3 and abs(coef["noise"]) < 0.2
    assert result.booster is None


def test_bad_input_is_named(table: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="features: no column missing_one"):
        train(table, ["x", "missing_one"])
    with pytest.raises(ValueError, match="label: the train part"):
        train(table.with_columns(label=pl.lit(0, pl.Int8)), FEATURES)
    with pytest.raises(ValueError, match="kind: 'forest'"):
        train(table, FEATURES, TrainOptions(kind="forest"))
    with pytest.raises(ValueError, match="label: labels must be 0 or 1"):
        train(table.with_columns(label=pl.lit(2, pl.Int8)), FEATURES)


def test_the_data_hash_changes_with_the_data(table: pl.DataFrame) -> None:
    options = TrainOptions(kind="logreg")
    a = train(table, FEATURES, options).data_sha256
    assert train(table, FEATURES, options).data_sha256 == a
    changed = table.with_columns(
        pl.when(pl.col("event_id") == "e7").then(9.0).otherwise(pl.col("z")).alias("z")
    )
    assert train(changed, FEATURES, options).data_sha256 != a


def test_card_precision_leaves_out_cards_caught_on_earlier_days() -> None:
    from datetime import UTC, datetime

    d = [datetime(2022, 1, day, 12, tzinfo=UTC) for day in (1, 2, 3)]
    frame = pl.DataFrame(
        {
            "timestamp": [d[0], d[0], d[0], d[1], d[1], d[1], d[2], d[2]],
            "card_id": ["a", "b", "c", "a", "b", "c", "a", "c"],
            "label": [1, 0, 0, 1, 0, 1, 1, 0],
            "score": [0.9, 0.8, 0.1, 0.99, 0.5, 0.4, 0.9, 0.3],
        }
    )
    per_day = card_precision_at_k(frame, k=2)
    # day 1: a (fraud) and b → 1 hit; day 2: a caught already, so b and c → c is a hit;
    # day 3: a and c caught, nothing left to rank.
    assert per_day.get_column("hits").to_list() == [1, 1, 0]
    assert per_day.get_column("cards").to_list() == [3, 2, 0]
    assert per_day.get_column("precision").to_list() == [0.5, 0.5, 0.0]
    # A card's day score is its highest transaction score that day.
    assert card_precision_at_k(frame, k=1).get_column("hits").to_list() == [1, 0, 0]
    with pytest.raises(ValueError, match="k: 0"):
        card_precision_at_k(frame, k=0)


def test_probability_batch_equals_one_row_at_a_time(table: pl.DataFrame) -> None:
    result = train(table, FEATURES)
    X = table.select(FEATURES).to_numpy()[:300]
    batch = result.model.probability_batch(X)
    single = np.array([result.model.probability(row) for row in X.tolist()])
    assert np.allclose(batch, single, rtol=0, atol=1e-12)
