"""The compiled evaluator gives LightGBM's own raw scores, bit for bit."""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np
import pytest

from vigil.models.model import Model
from vigil.models.trees import CompiledTrees


def _data(seed: int = 1, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 + rng.normal(size=n) > 1.8).astype(int)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[rng.random(X.shape) < 0.1] = 0.0
    return X, y


@pytest.mark.parametrize(
    "extra",
    [
        {},  # missing_type NaN: NaN takes the learnt default side
        {"zero_as_missing": True},  # missing_type Zero: 0 and NaN take the default side
        {"use_missing": False},  # missing_type None: NaN is read as 0.0
    ],
)
def test_compiled_raw_scores_equal_lightgbm(extra: dict) -> None:
    X, y = _data()
    params = {
        "objective": "binary",
        "verbose": -1,
        "num_leaves": 15,
        "max_depth": 6,
        "seed": 3,
        "deterministic": True,
        **extra,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=60)
    trees = CompiledTrees(booster.dump_model())
    X_new, _ = _data(seed=2, n=2000)  # unseen rows, NaNs and exact zeros included
    expected = booster.predict(X_new, raw_score=True)
    got = np.array([trees.raw(row) for row in X_new.tolist()])
    assert np.array_equal(got, expected)
    probability = booster.predict(X_new)
    assert np.allclose([trees.probability(r) for r in X_new.tolist()], probability, atol=1e-15)


def test_path_contributions_add_up_to_the_raw_score() -> None:
    X, y = _data()
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 7},
        lgb.Dataset(X, y),
        num_boost_round=30,
    )
    trees = CompiledTrees(booster.dump_model())
    for row in X[:200].tolist():
        bias, contributions = trees.contributions(row)
        assert bias + sum(contributions) == pytest.approx(trees.raw(row), abs=1e-9)
    # The feature the label depends on most carries the most attribution on average.
    mean_abs = np.mean([np.abs(trees.contributions(r)[1]) for r in X[:500].tolist()], axis=0)
    assert int(np.argmax(mean_abs)) == 0


def test_categorical_splits_are_refused() -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, size=(500, 1)).astype(float)
    y = (X[:, 0] == 3).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_per_group": 1, "cat_smooth": 0},
        lgb.Dataset(X, y, categorical_feature=[0]),
        3,
    )
    with pytest.raises(ValueError, match="decision_type"):
        CompiledTrees(booster.dump_model())


def test_a_regression_model_is_refused() -> None:
    X, y = _data()
    booster = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(X, y), 2)
    with pytest.raises(ValueError, match="objective"):
        CompiledTrees(booster.dump_model())


@pytest.mark.parametrize("extra", [{}, {"zero_as_missing": True}, {"use_missing": False}])
def test_compiled_contributions_equal_the_walk_of_the_dump(extra: dict) -> None:
    X, y = _data()
    params = {"objective": "binary", "verbose": -1, "num_leaves": 15, "seed": 3, **extra}
    trees = CompiledTrees(lgb.train(params, lgb.Dataset(X, y), num_boost_round=40).dump_model())
    for row in _data(seed=4, n=500)[0].tolist():
        assert trees.contributions(row) == trees.contributions_by_walking(row)


@pytest.mark.parametrize("extra", [{}, {"zero_as_missing": True}, {"use_missing": False}])
def test_stopping_early_drops_no_score_that_reaches_the_bar(extra: dict) -> None:
    X, y = _data()
    params = {"objective": "binary", "verbose": -1, "num_leaves": 15, "seed": 3, **extra}
    trees = CompiledTrees(lgb.train(params, lgb.Dataset(X, y), num_boost_round=60).dump_model())
    rows = _data(seed=5, n=1000)[0].tolist()
    raw = [trees.raw(row) for row in rows]
    stopped = 0
    # bars between the scores, and exactly at some, where rounding would show
    for least in [*np.quantile(raw, [0.1, 0.5, 0.9, 0.99]), raw[0], raw[1], 1e9, -1e9]:
        for row, full in zip(rows, raw, strict=True):
            got = trees.raw_reaching(row, least)
            if full >= least:
                assert got == full
            else:
                assert full <= got < least
                stopped += got != full
    assert stopped > 0


def test_model_at_least_is_probability_above_the_bar() -> None:
    X, y = _data()
    booster = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), 40)
    rows = _data(seed=6, n=500)[0].tolist()
    # a slope so flat that stepping the raw floor down barely moves its probability: no hang
    flat = (1e-20, math.log(0.3 / 0.7))
    for calibration in ((0.8, -0.5), (-0.3, 0.1), flat):
        model = Model("m", "lightgbm", CompiledTrees(booster.dump_model()), calibration=calibration)
        probability = [model.probability(row) for row in rows]
        for least in [0.0, 0.05, 0.3, 0.9, 1.0, probability[0], probability[1]]:
            at_least = model.at_least(least)
            expected = [p if p >= least else None for p in probability]
            assert [at_least(row) for row in rows] == expected
