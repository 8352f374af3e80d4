"""The registry: save → load gives identical predictions; manifests; promotion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vigil.models.pipeline import save_result
from vigil.models.registry import Registry
from vigil.models.train import TrainOptions, train

FEATURES = ["x", "z", "noise"]


@pytest.mark.parametrize("kind", ["lightgbm", "logreg"])
def test_round_trip_gives_identical_predictions(
    table: pl.DataFrame, tmp_path: Path, kind: str
) -> None:
    import lightgbm as lgb

    result = train(table, FEATURES, TrainOptions(kind=kind))
    registry = Registry(tmp_path)
    version = save_result(registry, result, sources={"events": "memory"})
    loaded = registry.load("transaction", version)
    X = table.select(FEATURES).to_numpy()
    assert np.array_equal(loaded.probability_batch(X), result.model.probability_batch(X))
    assert loaded.features == FEATURES and loaded.kind == kind and loaded.version == version
    if kind == "lightgbm":
        # The stored LightGBM model agrees with the compiled one the engine serves.
        booster = registry.booster("transaction", version)
        assert isinstance(booster, lgb.Booster)
        assert np.array_equal(booster.predict(X, raw_score=True), loaded.raw_batch(X))
    scores = registry.test_scores("transaction", version)
    assert scores is not None and scores.height == result.metrics["test"]["rows"]


def test_manifest_says_what_the_model_is(table: pl.DataFrame, tmp_path: Path) -> None:
    result = train(table, FEATURES, TrainOptions(kind="logreg"))
    registry = Registry(tmp_path)
    version = save_result(registry, result, sources={"events": "bank/events.parquet"})
    m = registry.manifest("transaction", version)
    assert m["version"] == "v0001" and m["status"] == "candidate" and m["kind"] == "logreg"
    assert m["features"] == FEATURES
    data = m["training_data"]
    assert data["sha256"] == result.data_sha256 and len(data["sha256"]) == 64
    assert data["sources"]["events"] == "bank/events.parquet"
    first, last = data["ranges"]["train"]
    assert first == table.get_column("timestamp").min().isoformat()
    assert last < data["ranges"]["validation"][0] < data["ranges"]["test"][0]
    assert m["parameters"]["gap_seconds"] == 86400.0 and m["parameters"]["kind"] == "logreg"
    assert m["metrics"]["test"]["roc_auc"] == result.metrics["test"]["roc_auc"]
    assert set(m["importance"]) == set(FEATURES)
    assert m["created_at"].endswith("+00:00")
    # the file itself is plain JSON
    assert json.loads((tmp_path / "transaction" / version / "manifest.json").read_text()) == m


def test_promotion_serves_one_version_at_a_time(table: pl.DataFrame, tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    result = train(table, FEATURES, TrainOptions(kind="logreg"))
    v1 = save_result(registry, result)
    v2 = save_result(registry, result)
    assert (v1, v2) == ("v0001", "v0002")
    with pytest.raises(LookupError, match="no promoted version"):
        registry.load("transaction")
    registry.promote("transaction", v1)
    assert registry.promoted("transaction") == v1
    registry.promote("transaction", v2)
    statuses = {m["version"]: m["status"] for m in registry.list("transaction")}
    assert statuses == {"v0001": "candidate", "v0002": "promoted"}
    assert registry.load("transaction").version == v2
    with pytest.raises(LookupError, match=r"version 'v0009'.*v0001, v0002"):
        registry.promote("transaction", "v0009")


def test_a_failed_save_leaves_nothing_behind(table: pl.DataFrame, tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    result = train(table, FEATURES, TrainOptions())
    with pytest.raises(ValueError, match="booster"):
        registry.save(result.model, {}, booster=None)
    assert registry.list() == []
    assert [p.name for p in (tmp_path / "transaction").iterdir()] == []
    with pytest.raises(ValueError, match="name: 'Bad Name'"):
        result.model.name = "Bad Name"
        registry.save(result.model, {}, booster=result.booster)
